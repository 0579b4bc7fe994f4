"""``stackwatch config check FILE`` and ``stackwatch config sample``."""

from __future__ import annotations

import sys

import click

from stackwatch.config.loader import ConfigErrors, load_config
from stackwatch.config.sample import SAMPLE
from stackwatch.core.errors import ConfigError


@click.group("config")
def config_group() -> None:
    """Check or print the configuration of `stackwatch serve`."""


@config_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--rules/--no-rules", default=True, help="also load the configured rules")
def check_command(path: str, rules: bool) -> None:
    """Validate PATH: every problem as file:line: field: reason; secrets must resolve."""
    try:
        settings = load_config(path)
    except ConfigErrors as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{path}: {len(exc.problems)} problems") from None
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    problems = 0
    if rules:
        from stackwatch.detect.loader import RuleSet, builtin_rules, load_rules

        loaded = builtin_rules() if settings.rules.builtin else RuleSet()
        if settings.rules.paths:
            loaded.extend(load_rules(settings.rules.paths))
        for error in loaded.errors:
            click.echo(f"rule problem: {error}", err=True)
        problems = len(loaded.errors)
        click.echo(f"rules: {len(loaded.rules)} loaded, {problems} with problems")
    click.echo(f"sources: {', '.join(f'{s.name} ({s.type})' for s in settings.sources) or 'none'}")
    click.echo(f"sinks: {', '.join(f'{s.name} ({s.type})' for s in settings.sinks) or 'none'}")
    click.echo(f"store: {settings.store.url}")
    if problems and settings.rules.strict:
        sys.exit(1)
    click.echo(f"{path}: ok")


@config_group.command("sample")
def sample_command() -> None:
    """Print a commented sample configuration."""
    click.echo(SAMPLE, nl=False)
