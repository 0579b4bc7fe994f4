"""A sender cannot move `serve`'s clock: records stamped in the future are detected and stored
at their receive time (flagged), and a year-less stamp never takes next year. Through a real
`stackwatch serve` process fed by a UDP socket."""

from __future__ import annotations

import shutil
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.event import Event
from stackwatch.store import EventQuery, open_store
from tests.servetools import ServeProcess, free_port, serve_config

pytestmark = pytest.mark.integration

HEARTBEAT_RULE = Path(__file__).parents[2] / "src/stackwatch/rules/logging/monitor_pipeline_stalled.yaml"
HEARTBEAT_RULE_ID = "a58b3588-2d19-47ff-86e8-53beda4f4827"


def _serve(tmp_path: Path, tolerance: str) -> tuple[ServeProcess, int]:
    port = free_port(socket.SOCK_DGRAM)
    config = serve_config(
        tmp_path,
        f"  - {{type: syslog_udp, name: udp, listen: '127.0.0.1:{port}'}}\n",
        extra=f"limits: {{heartbeat_interval: 200ms, tick_interval: 200ms, future_tolerance: {tolerance}}}\n",
    )
    shutil.copy(HEARTBEAT_RULE, tmp_path / "rules")
    return ServeProcess(config).start(), port


def _send_from_the_future(port: int) -> datetime:
    sent = datetime.now(UTC)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"<13>Jan  1 00:00:00 ctl1 app: happy new year", ("127.0.0.1", port))
        sock.sendto(b"<13>1 2031-01-01T00:00:00Z ctl1 app - - - from the future", ("127.0.0.1", port))
    time.sleep(2)  # ten ticks: the absence rule would have fired on a clock moved to 2031
    return sent


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[datetime, dict[str, Event], list[str]]:
    """What serve stored after the two datagrams: when they were sent, the events by message,
    the rules of the alerts raised."""
    folder = tmp_path_factory.mktemp("serve")
    serve, port = _serve(folder, "5m")
    try:
        sent = _send_from_the_future(port)
    finally:
        assert serve.stop() == 0, serve.log()
    with open_store(folder / "data") as store:
        events = {e.event.message: e.event for e in store.search_events(EventQuery(service="app", limit=10))}
        rules = [a.alert.rule for a in store.alerts()]
    return sent, events, rules


def test_a_future_stamp_is_clamped_to_its_receipt_and_flagged(stored) -> None:  # type: ignore[no-untyped-def]
    sent, events, _ = stored
    future = events["from the future"]
    assert future.attrs["future_time"] == "2031-01-01T00:00:00+00:00"
    assert future.time == future.received and abs(future.received - sent) < timedelta(seconds=10)
    assert "2031" in future.raw  # the record itself is kept as sent


def test_a_year_less_stamp_is_never_put_in_next_year(stored) -> None:  # type: ignore[no-untyped-def]
    new_year = stored[1]["happy new year"]
    assert new_year.time <= new_year.received + timedelta(days=1)
    assert new_year.time.month == 1 and new_year.time.day == 1


def test_a_future_stamp_does_not_blind_the_heartbeat_rule(stored) -> None:  # type: ignore[no-untyped-def]
    assert HEARTBEAT_RULE_ID not in stored[2]
