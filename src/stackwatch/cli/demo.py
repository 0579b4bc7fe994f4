"""``stackwatch demo``: analyze a generated, realistic multi-host cloud with attacks in it."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from stackwatch.cli.analyze import run_analyze


@click.command("demo")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Write the generated logs here and keep them (default: a temporary folder).")
@click.option("--seed", default=7, show_default=True, help="Scenario seed (same seed, same logs).")
def demo_command(fmt: str, keep: str | None, seed: int) -> None:
    """Generate a small cloud's logs (3 controllers, computes, a network node, with attacks)
    and print the alerts stackwatch raises on them."""
    from stackwatch.scenario import demo_dataset

    with tempfile.TemporaryDirectory(prefix="stackwatch-demo-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        logs = demo_dataset(root / "logs", seed=seed)
        sys.stderr.write(f"demo logs: {logs}\n")
        run_analyze([str(logs)], data=str(root / "data"), fmt=fmt)
