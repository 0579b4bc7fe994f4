"""Entry point of the ``stackwatch`` command."""

from __future__ import annotations

import click

from stackwatch import __version__
from stackwatch.cli.analyze import analyze_command
from stackwatch.cli.demo import demo_command
from stackwatch.cli.rules import rules_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stackwatch")
def cli() -> None:
    """stackwatch: security monitoring and log management for OpenStack clouds."""


cli.add_command(analyze_command)
cli.add_command(demo_command)
cli.add_command(rules_group)


def main() -> None:
    cli()
