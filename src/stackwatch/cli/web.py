"""``stackwatch web``: serve the HTTP API and the dashboard over a data folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from stackwatch.cli.analyze import DEFAULT_DATA
from stackwatch.cli.startup_warnings import plain_http_warning


def load_web_settings(config: str | None, overrides: dict[str, Any]) -> Any:
    """WebSettings from the ``web:`` mapping of ``config`` (YAML), then command-line overrides;
    the expected sources from the file's top-level ``expected_sources:`` (serve reads the same)."""
    import dataclasses

    import yaml

    from stackwatch.api.keystone_settings import AuthSettings
    from stackwatch.api.settings import WebSettings
    from stackwatch.config.schema import Where, build
    from stackwatch.config.settings import ExpectedSource
    from stackwatch.core.errors import ConfigError

    data: dict[str, Any] = {}
    expected: list[Any] = []
    auth = AuthSettings()
    cluster = None
    if config:
        try:
            loaded = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read: {exc}", config) from exc
        if not isinstance(loaded, dict) or not isinstance(loaded.get("web", {}), dict):
            raise ConfigError("expected a mapping with a 'web:' section", config)
        data.update(loaded.get("web") or {})
        auth = AuthSettings.from_mapping(loaded.get("auth"), config)
        listed = loaded.get("expected_sources") or []
        if not isinstance(listed, list):
            raise ConfigError("expected a list of {host, service}", config, field="expected_sources")
        expected = [build(ExpectedSource, item, Where(config, None), f"expected_sources[{i}]")
                    for i, item in enumerate(listed)]
        if loaded.get("cluster") is not None:  # the Cluster page: the broker serve's roles use
            from stackwatch.config.settings import ClusterSettings

            cluster = build(ClusterSettings, loaded["cluster"], Where(config, None), "cluster")
    data.update({k: v for k, v in overrides.items() if v is not None})
    settings = WebSettings.from_mapping(data, config)
    if expected:
        pairs = tuple((e.host, e.service) for e in expected)
        settings = dataclasses.replace(settings, expected_sources=pairs)
    if auth.keystone is not None:
        settings = dataclasses.replace(settings, keystone=auth.keystone)
    if cluster is not None:
        settings = dataclasses.replace(settings, cluster=cluster)
    return settings


@click.command("web")
@click.option(
    "--data", default=DEFAULT_DATA, show_default=True, help="Data folder of the store (and users.db)."
)
@click.option("--listen", default=None, help="host:port [default: 127.0.0.1:8443].")
@click.option(
    "--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM certificate."
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM private key."
)
@click.option("--session-secret", default=None, help="Secret reference: $env:NAME or $file:/path.")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML configuration file; its 'web:' section holds the settings.",
)
@click.option("--rules", multiple=True, type=click.Path(exists=True), help="Extra rule files or folders.")
@click.option("--store", "store_url", default=None, envvar="STACKWATCH_STORE", metavar="URL",
              help="The store, when not the data folder's own: postgresql://user@host/db (the password "
              "from $PGPASSWORD or ~/.pgpass; users.db and rule switches stay in --data).")
def web_command(
    data: str,
    listen: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    session_secret: str | None,
    config: str | None,
    rules: tuple[str, ...],
    store_url: str | None,
) -> None:
    """Serve the API (/api/v1, OpenAPI at /api/v1/openapi.json) and the dashboard."""
    import uvicorn

    from stackwatch.api import Services, create_app
    from stackwatch.core.errors import StackwatchError

    try:
        settings = load_web_settings(
            config,
            {"listen": listen, "tls_cert": tls_cert, "tls_key": tls_key, "session_secret": session_secret},
        )
        if "://" in data and not data.startswith("sqlite:"):
            raise click.UsageError("--data is the web's folder (users.db): give a shared store with "
                                   "--store URL")
        services = Services.for_data_dir(data, rule_paths=rules, store=store_url)
    except StackwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if not services.users.all():
        sys.stderr.write(
            f"no users yet: create one with `stackwatch user add NAME --role admin --data {data}`\n"
        )
    if session_secret is None and not (
        config and "session_secret" in Path(config).read_text(encoding="utf-8")
    ):
        sys.stderr.write("no session secret configured: using a random one (sessions end on restart)\n")
    if not settings.tls:
        sys.stderr.write(f"warning: {plain_http_warning(*settings.host_port)}\n")
    host, port = settings.host_port
    app = create_app(settings, services)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            ssl_certfile=str(settings.tls_cert) if settings.tls else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls else None,
            server_header=False,
            proxy_headers=False,
            log_level="info",
        )
    finally:
        services.close()
