"""Entry point of the ``stackwatch`` command.

Command groups register by name in COMMANDS (``module:attribute``), imported lazily so that
``stackwatch analyze`` does not pay for the web stack, and a command whose optional
dependencies are missing is reported instead of breaking the whole CLI.

Every error a command ends with is one line on stderr (``Error: ...``) and a non-zero exit,
never a Python traceback: what a command does not turn into a clear message itself is
turned into one here (``STACKWATCH_DEBUG=1`` shows the traceback instead, for a bug report).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import click

from stackwatch import __version__
from stackwatch.cli.errors import DEBUG_ENV, error_line

COMMANDS: dict[str, str] = {
    "analyze": "stackwatch.cli.analyze:analyze_command",
    "demo": "stackwatch.cli.demo:demo_command",
    "rules": "stackwatch.cli.rules:rules_group",
    "store": "stackwatch.cli.store_cmd:store_group",
    "serve": "stackwatch.cli.serve:serve_command",
    "config": "stackwatch.cli.config_cmd:config_group",
    "web": "stackwatch.cli.web:web_command",
    "user": "stackwatch.cli.user:user_group",
    "report": "stackwatch.cli.report:report_group",
    "orphans": "stackwatch.cli.orphans:orphans_command",
    "respond": "stackwatch.cli.respond:respond_group",
    "alerts": "stackwatch.cli.lists:alerts_command",
    "sources": "stackwatch.cli.lists:sources_command",
    "search": "stackwatch.cli.search:search_command",
    "cluster": "stackwatch.cli.cluster_cmd:cluster_group",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._reference(name) is not None]

    @staticmethod
    def _reference(name: str) -> str | None:
        reference = COMMANDS.get(name)
        if reference is None:
            return None
        module_name = reference.partition(":")[0]
        return reference if importlib.util.find_spec(module_name) is not None else None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        reference = self._reference(cmd_name)
        if reference is None:
            return None
        module_name, _, attribute = reference.partition(":")
        try:
            command: Any = getattr(importlib.import_module(module_name), attribute)
        except ImportError as exc:
            raise click.ClickException(
                f"'{cmd_name}' needs an optional dependency that is not installed: {exc}") from exc
        return command  # type: ignore[no-any-return]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt):
            raise  # a command's own message is as it means it (search points at a token under it)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            raise click.ClickException(error_line(exc)) from exc


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from stackwatch import accel  # imports the hot modules to tell: only when asked

    click.echo(f"stackwatch, version {__version__}\nhot paths: {accel.status()}")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and which hot-path build runs (compiled or pure Python), and exit.")
def cli() -> None:
    """stackwatch: security monitoring and log management for OpenStack clouds."""


def main() -> None:
    cli()
