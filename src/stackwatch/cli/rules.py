"""``stackwatch rules list|test``."""

from __future__ import annotations

import sys

import click


@click.group("rules")
def rules_group() -> None:
    """Inspect and test detection rules."""


@rules_group.command("list")
@click.argument("paths", nargs=-1)
def rules_list_command(paths: tuple[str, ...]) -> None:
    """List the loaded rules (built-in packs plus PATHS)."""
    from stackwatch.detect import rules_list

    text, status = rules_list(list(paths))
    sys.stdout.write(text)
    sys.exit(status)


@rules_group.command("test")
@click.argument("paths", nargs=-1)
def rules_test_command(paths: tuple[str, ...]) -> None:
    """Run the test vectors of the built-in rules, or of the rule files in PATHS."""
    from stackwatch.detect import rules_test

    text, status = rules_test(list(paths))
    sys.stdout.write(text)
    sys.exit(status)
