"""The cluster on PostgreSQL for the integration tests: the demo's records as TCP syslog streams
(one listener per host and log, so a collector names host and service as the file reader does),
a collector and analyzer fleet of real processes, and what the shared store holds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from stackwatch.core.event import Event
from stackwatch.pipeline.reader import discover, read_event_batches
from stackwatch.scenario import demo_dataset
from stackwatch.store import open_store
from tests.servetools import free_port

TIE_PAUSE = 0.05
WALL_CLOCK = {"logging.silence", "monitor.heartbeat"}  # judged on the wall clock, not the records'


def demo_logs(folder: Path) -> Path:
    """The demo's log tree without ``aide.log``: an AIDE report is one multi-line record of a
    file giving several events, and ``Sender`` sends each event's raw text as a frame (the
    report, then each entry line again), so it is left out of both sides. A report sent whole
    as one frame gives the file form's events (tests/producers/test_aide.py)."""
    logs = demo_dataset(folder, seed=7)
    for aide in logs.rglob("aide.log"):
        aide.unlink()
    return logs


def file_events(logs: Path) -> list[Event]:
    """The records as `stackwatch analyze` reads them, in event-time order (as a live cloud
    writes them; stable: one file's records keep their order)."""
    events = [e for batch in read_event_batches(discover([str(logs)])) for e in batch]
    return sorted(events, key=lambda e: e.time)


def analyze_alerts(logs: Path, config: Path, data: Path,
                   env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The alerts `stackwatch analyze` raises over ``logs`` (``env`` added to the environment)."""
    done = subprocess.run([sys.executable, "-m", "stackwatch", "analyze", str(logs), "--config", str(config),
                           "--data", str(data), "--format", "json"],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@dataclass
class Streams:
    """One TCP listener per (host, service) stream, each stream assigned to one collector."""

    ports: dict[tuple[str, str], int] = field(default_factory=dict)
    owner: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def plan(cls, events: list[Event], collectors: int) -> Streams:
        """Hosts alternate between the collectors: the controllers' keystone logs (one brute
        force against all of them) are read by different collectors."""
        out = cls()
        hosts = sorted({e.host for e in events})
        for e in events:
            key = (e.host, e.service)
            if key not in out.ports:
                out.ports[key] = free_port()
                out.owner[key] = hosts.index(e.host) % collectors
        return out

    def new_ports(self, collector: int) -> None:
        """Other ports for a collector's listeners (one of them was taken meanwhile)."""
        for key, owner in self.owner.items():
            if owner == collector:
                self.ports[key] = free_port()

    def sources(self, collector: int) -> str:
        """Each collector names its listeners tcp0, tcp1...: the same source names, so the same
        ``<origin>:<n>`` refs, on both (as with one configuration file for every member)."""
        mine = [(key, port) for key, port in sorted(self.ports.items()) if self.owner[key] == collector]
        return "".join(f"  - {{type: syslog_tcp, name: tcp{n}, listen: '127.0.0.1:{port}', "
                       f"host: '{h}', service: '{s}'}}\n" for n, ((h, s), port) in enumerate(mine))


def frame(event: Event) -> bytes:
    body = event.raw.encode("utf-8", "surrogateescape")
    return b"%d %s" % (len(body), body)


class Sender:
    """Sends the records in time order over real TCP connections, ``rate`` records a second,
    in a thread; ``sent`` counts what was handed to the kernel."""

    def __init__(self, events: list[Event], streams: Streams, rate: float) -> None:
        self.events = events
        self.streams = streams
        self.rate = rate
        self.sent = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sender:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            socks = {key: socket.create_connection(("127.0.0.1", port), timeout=30)
                     for key, port in self.streams.ports.items()}
            started = time.monotonic()
            previous: Event | None = None
            for n, event in enumerate(self.events):
                stream = (event.host, event.service)
                if previous is not None and previous.time == event.time \
                        and (previous.host, previous.service) != stream:
                    # records of two streams stamped the same (second-resolution syslog): the
                    # first must reach its collector first, as analyze takes them in file order
                    time.sleep(TIE_PAUSE)
                    started += TIE_PAUSE
                socks[stream].sendall(frame(event))
                self.sent = n + 1
                previous = event
                ahead = n / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            for sock in socks.values():
                sock.close()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the sender finished"
        assert self.error is None, self.error


def stored_count(url: str) -> int:
    try:
        with open_store(url, read_only=True) as store:
            return store.counts().events
    except Exception:  # not created yet: asked again
        return 0


def stored(url: str) -> tuple[list[Event], list[dict[str, Any]]]:
    with open_store(url, read_only=True) as store:
        ids = _all_ids(store)
        events = [s.event for start in range(0, len(ids), 5000)
                  for s in store.get_events(ids[start:start + 5000])]  # at most 10,000 a call
        alerts = [json.loads(msgspec.json.encode(s.alert)) for s in store.alerts()]
    return events, alerts


def _all_ids(store: Any) -> list[int]:
    ids: list[int] = []
    for number, _ in store.writers():
        row = store._conn.execute("SELECT id FROM events WHERE writer = %s ORDER BY id", (number,))
        ids += [int(r[0]) for r in row]
    return ids


def alert_key(alert: dict[str, Any]) -> tuple[Any, ...]:
    details = alert.get("details") or {}
    return (alert["rule"], alert["key"], alert["category"], alert["severity"], details.get("events"),
            alert.get("count", 1), alert["time"])


LEARNING_SLACK = 60.0
"""Seconds after a new_value rule's learning period (counted from the first record) in which
its alerts are not compared: a partition's learning starts at the first record it receives,
not the stream's (docs/cluster.md, "Learning periods"), seconds later in a replay."""


def _learning_edge(events: list[Event]) -> dict[str, float]:
    """new_value rule id -> the end of its learning period plus LEARNING_SLACK (epoch seconds)."""
    from stackwatch.detect.loader import builtin_rules

    start = min(e.time for e in events).timestamp()
    return {rule.id: start + rule.params.learning + LEARNING_SLACK  # type: ignore[attr-defined]
            for rule in builtin_rules().rules if rule.kind == "new_value"}


def _compared(alert: dict[str, Any], edge: dict[str, float]) -> bool:
    if alert["category"] in WALL_CLOCK:
        return False
    limit = edge.get(alert["rule"])
    return limit is None or datetime.fromisoformat(alert["time"].replace("Z", "+00:00")).timestamp() > limit


def compare(expected: list[dict[str, Any]], got: list[dict[str, Any]], events: list[Event]) -> None:
    idents = [(a["rule"], a["key"]) for a in got]
    assert len(idents) == len(set(idents)), "no alert raised twice"
    edge = _learning_edge(events)
    want = sorted(alert_key(a) for a in expected if _compared(a, edge))
    have = sorted(alert_key(a) for a in got if _compared(a, edge))
    assert want, "the demo raises alerts"
    assert have == want, (f"only analyze: {sorted(set(want) - set(have))}\n"
                          f"only the cluster: {sorted(set(have) - set(want))}")


def same_records(sent: list[Event], kept: list[Event]) -> None:
    """Every record sent is stored, exactly once (by host, service and raw text)."""
    want = Counter((e.host, e.service, e.raw) for e in sent)
    have = Counter((e.host, e.service, e.raw) for e in kept)
    assert have == want, (f"missing {sum((want - have).values())}, extra {sum((have - want).values())}: "
                          f"{list((want - have).items())[:3]} {list((have - want).items())[:3]}")


def tail_source(path: Path) -> str:
    """A collector's ``sources`` entry tailing ``path`` from its beginning."""
    return f"  - {{type: file, name: logs, paths: ['{path}'], start_at: beginning, poll_interval: 20ms}}\n"


def sshd_writer(path: Path, stop: threading.Event, lines: int = 6000, rate: float = 1500.0) -> None:
    """Appends ``lines`` sshd lines at ``rate`` a second (failures from a few addresses, some
    successes), flushed line by line, until done or ``stop`` is set: a file a collector tails
    while the test kills or restarts something beneath it."""
    with path.open("a", encoding="utf-8") as out:
        started = time.monotonic()
        for n in range(lines):
            stamp = datetime.now(UTC).strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
            host = f"cmp{n % 3}"
            if n % 7 == 0:
                text = f"Accepted publickey for deploy from 10.0.0.{n % 5} port {30000 + n} ssh2"
            else:
                text = f"Failed password for root from 203.0.113.{n % 4} port {30000 + n} ssh2"
            out.write(f"{stamp} {host} sshd[{1000 + n % 50}]: {text}\n")  # each line unique by its port
            out.flush()
            ahead = n / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
            if stop.is_set():
                return
