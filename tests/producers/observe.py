"""How the producer tests watch stackwatch: ``analyze`` over files a producer wrote, and a real
``stackwatch serve`` consuming a producer's notifications from RabbitMQ."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackwatch.core.alert import Alert
from stackwatch.core.event import Event
from stackwatch.pipeline.analyze import analyze
from stackwatch.pipeline.engine import build_engine
from stackwatch.pipeline.reader import ReadProgress, discover, read_event_batches
from tests.servetools import ServeProcess, amqp_cleanup, run, wait_for


def analyze_files(*paths: Path) -> list[Alert]:
    """`stackwatch analyze PATH...` with the built-in rules, through its Python API."""
    return analyze(discover([str(p) for p in paths]), engine=build_engine()).alerts


def read_events(*paths: Path) -> list[Event]:
    """Every event the parsers make of ``paths`` (unparsed records included)."""
    return [event for batch in read_event_batches(discover([str(p) for p in paths]), ReadProgress())
            for event in batch]


def categories(alerts: list[Alert] | list[dict[str, Any]]) -> set[str]:
    return {a.category if isinstance(a, Alert) else a["category"] for a in alerts}


@dataclass
class Slice:
    """What a file gained since it was marked: a producer's output during one scenario."""

    source: Path
    start: int

    @classmethod
    def mark(cls, source: Path) -> Slice:
        return cls(source, source.stat().st_size if source.exists() else 0)

    def gained(self) -> bytes:
        if not self.source.exists():
            return b""
        with self.source.open("rb") as data:
            data.seek(self.start)
            return data.read()

    def save(self, target: Path) -> Path:
        target.write_bytes(self.gained())
        return target


@dataclass
class ServeAmqp:
    """`stackwatch serve` (a real process, built-in rules) reading one exchange and topic, with
    a file sink; ``alerts()`` are the alert documents it has sent so far."""

    process: ServeProcess
    sink: Path
    data: Path  # its store (readable with stackwatch.store.open_store once it stopped)

    def alerts(self) -> list[dict[str, Any]]:
        if not self.sink.exists():
            return []
        return [json.loads(line)["alert"] for line in self.sink.read_text().splitlines() if line]

    def wait_for_categories(self, expected: set[str], timeout: float = 60.0) -> list[dict[str, Any]]:
        """The alerts once every ``expected`` category has come (bounded)."""
        wait_for(lambda: expected <= categories(self.alerts()), timeout=timeout, interval=0.25)
        return self.alerts()


@contextmanager
def serve_amqp(folder: Path, exchange: str, topic: str, files: tuple[Path, ...] = ()) -> Iterator[ServeAmqp]:
    """`serve` on the notifications of ``exchange``/``topic``, and following ``files`` (from their
    end) when given."""
    folder.mkdir(parents=True, exist_ok=True)
    tail = (f"  - {{type: file, name: logs, paths: [{', '.join(repr(str(f)) for f in files)}],"
            " start_at: end, poll_interval: 100ms}\n") if files else ""
    queue = f"sw-producers-{uuid.uuid4().hex[:8]}"
    sink = folder / "alerts.jsonl"
    config = folder / "serve.yaml"
    config.write_text(
        f"hostname: testmon\nstate_dir: {folder / 'state'}\nstore: {{url: '{folder / 'data'}'}}\n"
        "rules: {builtin: true}\n"
        "listen: {metrics: null}\n"
        "sources:\n"
        "  - {type: amqp, name: bus, url: 'amqp://guest@127.0.0.1:5672/', password: $env:SW_AMQP_PW,"
        f" exchanges: [{exchange}], topics: [{topic}], queue: {queue}, queue_durable: false}}\n"
        + tail +
        f"sinks:\n  - {{type: file, name: alert-log, path: '{sink}'}}\n"
    )
    process = ServeProcess(config, env={"SW_AMQP_PW": "guest"}).start(timeout=60)
    try:
        yield ServeAmqp(process, sink, folder / "data")
    finally:
        try:
            process.stop()
        finally:
            process.kill()
            run(amqp_cleanup([], [queue]))
