"""Routing by category and severity."""

from __future__ import annotations

import pytest

from stackwatch.alerts.routing import Router
from stackwatch.config import parse_config

ROUTES = """\
sinks:
  - {type: file, name: soc, path: /dev/null}
  - {type: file, name: pager, path: /dev/null}
  - {type: file, name: archive, path: /dev/null}
routing:
  - {sinks: [soc, archive]}
  - {sinks: [pager, soc], categories: ["auth.*", logging.silence], min_severity: high}
"""


@pytest.mark.parametrize(
    ("category", "severity", "sinks"),
    [
        ("auth.bruteforce", "high", ["soc", "archive", "pager"]),
        ("auth.bruteforce", "medium", ["soc", "archive"]),
        ("logging.silence", "critical", ["soc", "archive", "pager"]),
        ("firewall.flush", "critical", ["soc", "archive"]),
    ],
)
def test_routes(category: str, severity: str, sinks: list[str]) -> None:
    settings = parse_config(ROUTES)
    assert Router(settings.routing, [s.name for s in settings.sinks]).route(category, severity) == sinks


def test_without_routes_every_sink_gets_everything() -> None:
    assert Router([], ["a", "b"]).route("os.login", "low") == ["a", "b"]
