"""``stackwatch rules list|test``."""

from __future__ import annotations

import sys

import click


@click.group("rules")
def rules_group() -> None:
    """Inspect and test detection rules."""


@rules_group.command("list")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def rules_list_command(paths: tuple[str, ...]) -> None:
    """List the loaded rules (built-in packs plus PATHS)."""
    from stackwatch.detect import rules_list

    _report(*rules_list(list(paths)))


@rules_group.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def rules_test_command(paths: tuple[str, ...]) -> None:
    """Run the test vectors of the built-in rules, or of the rule files in PATHS."""
    from stackwatch.detect import rules_test

    _report(*rules_test(list(paths)))


def _report(text: str, status: int) -> None:
    """The report on stdout, its ``error:`` lines (rules that failed to load) on stderr."""
    for line in text.splitlines(keepends=True):
        (sys.stderr if line.startswith("error:") else sys.stdout).write(line)
    sys.exit(status)
