"""The self-monitoring HTTP listener: ``GET /metrics`` (Prometheus text format, bearer token
required) and ``GET /healthz`` (open: 200 when the pipeline makes progress, 503 when stalled).

Plain asyncio, HTTP/1.0 semantics (one request per connection): this is a probe endpoint,
not the web UI, and it must keep answering while the rest of the process is busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from stackwatch.config.schema import Address

if TYPE_CHECKING:
    from stackwatch.pipeline.runner import Runner

MAX_REQUEST = 8192
TIMEOUT = 5.0


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def store_bytes(url: str) -> int | None:
    """Size on disk of an embedded store (its data folder); None for a remote store."""
    if "://" in url and not url.startswith("sqlite://"):
        return None
    folder = Path(url.split("://", 1)[1][1:] if url.startswith("sqlite://") else url)
    total = 0
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file():
                    total += entry.stat().st_size
    return total


# Per-source figures that are one counter attribute each: (metric, type, help, attribute).
_SOURCE_COUNTERS: tuple[tuple[str, str, str, str], ...] = (
    ("stackwatch_records_received_total", "counter", "Records accepted from a source.", "received"),
    ("stackwatch_received_bytes_total", "counter", "Bytes read from a source.", "bytes"),
    ("stackwatch_records_truncated_total", "counter", "Records cut to max_message_bytes.", "truncated"),
    ("stackwatch_events_decoded_total", "counter", "Events produced from a source's records.", "events"),
    ("stackwatch_events_unparsed_total", "counter", "Records kept raw because no parser understood them.",
     "unparsed"),
    ("stackwatch_events_committed_total", "counter", "Events committed to the store (out).", "committed"),
    ("stackwatch_duplicates_skipped_total", "counter", "Redelivered records already stored (skipped).",
     "duplicates"),
    ("stackwatch_source_errors_total", "counter", "Connection and read errors.", "errors"),
    ("stackwatch_source_connections", "gauge", "Open connections (TCP sources).", "connections"),
)


def render_metrics(runner: Runner) -> str:
    """Every metric in the Prometheus text exposition format (version 0.0.4)."""
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(
            f"{name}{labels} {value:g}" if isinstance(value, float) else f"{name}{labels} {value}"
            for labels, value in samples
        )

    sources = runner.sources
    for source in sources:
        source.refresh_counters()
    for name, kind, help_text, counter in _SOURCE_COUNTERS:
        samples = [(_labels(source=s.name), getattr(s.counters, counter)) for s in sources]
        metric(name, kind, help_text, samples)
    metric(
        "stackwatch_records_dropped_total",
        "counter",
        "Records lost (UDP: the kernel's receive buffer full, the queue full or over the rate limit).",
        [
            (_labels(source=s.name, reason=r), v)
            for s in sources
            for r, v in (
                ("kernel", s.counters.dropped_kernel),
                ("queue_full", s.counters.dropped_queue_full),
                ("rate_limit", s.counters.dropped_rate),
            )
        ],
    )
    metric(
        "stackwatch_queue_depth",
        "gauge",
        "Records waiting in a source's queue.",
        [(_labels(source=s.name), len(s.queue)) for s in sources],
    )
    metric(
        "stackwatch_queue_capacity",
        "gauge",
        "Size of a source's queue.",
        [(_labels(source=s.name), s.queue.capacity) for s in sources],
    )
    now = time.time()
    oldest = [r for r in (s.queue.oldest_received() for s in sources) if r is not None]
    metric(
        "stackwatch_queue_lag_seconds",
        "gauge",
        "Age of the oldest record waiting in any queue.",
        [("", round(now - min(oldest), 6) if oldest else 0.0)],
    )
    metric(
        "stackwatch_commit_lag_seconds",
        "gauge",
        "From receipt of the oldest record of the last batch to its commit.",
        [("", round(runner.commit_lag, 6))],
    )
    metric(
        "stackwatch_last_commit_timestamp_seconds",
        "gauge",
        "When the last batch was committed.",
        [("", round(runner.last_commit, 3))],
    )
    metric(
        "stackwatch_store_events_total",
        "counter",
        "Events committed by this process.",
        [("", runner.stored_events)],
    )
    metric(
        "stackwatch_store_errors_total",
        "counter",
        "Failed store commits (retried).",
        [("", runner.store_errors)],
    )
    size = store_bytes(runner.settings.store.url)
    if size is not None:
        metric("stackwatch_store_bytes", "gauge", "Size of the embedded store on disk.", [("", size)])
    metric(
        "stackwatch_alert_changes_total",
        "counter",
        "Alerts raised, updated or resolved.",
        [(_labels(category=c, severity=v), n) for (c, v), n in sorted(runner.alert_changes.items())],
    )
    metric(
        "stackwatch_alert_changes_silenced_total",
        "counter",
        "Alert changes stored but not delivered to any sink: a silence muted them.",
        [("", runner.silenced_changes)],
    )
    dispatcher = runner.dispatcher
    metric(
        "stackwatch_notifications_total",
        "counter",
        "Alert notifications per sink and result.",
        [
            (_labels(sink=name, result=r), getattr(c, r))
            for name, c in dispatcher.counters.items()
            for r in ("sent", "failed", "retried", "throttled", "dropped")
        ],
    )
    metric(
        "stackwatch_notifications_pending",
        "gauge",
        "Notifications waiting for delivery.",
        [("", dispatcher.pending())],
    )
    stats = runner.engine.stats
    metric("stackwatch_engine_events_total", "counter", "Events run through detection.", [("", stats.events)])
    metric("stackwatch_engine_firings_total", "counter", "Rule firings.", [("", stats.firings)])
    metric(
        "stackwatch_up",
        "gauge",
        "1 while the pipeline makes progress.",
        [("", int(runner.selfmon.healthy()))],
    )
    metric(
        "stackwatch_uptime_seconds", "gauge", "Seconds since start.", [("", round(now - runner.started, 3))]
    )
    return "\n".join(out) + "\n"


class MonitorHTTP:
    def __init__(self, runner: Runner, listen: Address, token: str) -> None:
        self.runner = runner
        self.listen = listen
        self.token = token.encode()
        self.server: asyncio.Server | None = None
        self.address: tuple[str, int] | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.listen.host, self.listen.port)
        self.address = self.server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            status, ctype, body = self.answer(head[:MAX_REQUEST])
            # HEAD: the headers GET would send (its Content-Length included), no body (RFC 9110 9.3.2)
            send_body = not head.startswith(b"HEAD ")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            status, ctype, body = 400, "text/plain", b"bad request\n"
            send_body = True
        try:
            extra = 'WWW-Authenticate: Bearer realm="stackwatch"\r\n' if status == 401 else ""
            writer.write(
                f"HTTP/1.0 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n".encode()
                + (body if send_body else b"")
            )
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def health(self) -> tuple[bool, bytes]:
        """``/healthz``: healthy or not, and the JSON body (a process serving this overrides it)."""
        healthy = self.runner.selfmon.healthy()
        return healthy, orjson.dumps(
            {
                "status": "ok" if healthy else "stalled",
                "queue_depth": self.runner.queue_depth(),
                "last_commit": self.runner.last_commit,
                "uptime": round(time.time() - self.runner.started, 3),
            }
        )

    def render(self) -> str:
        """``/metrics``: the Prometheus text (a process serving this overrides it)."""
        return render_metrics(self.runner)

    def answer(self, head: bytes) -> tuple[int, str, bytes]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3:
            return 400, "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if target == "/healthz":
            healthy, body = self.health()
            return (200 if healthy else 503), "application/json", body
        if target == "/metrics":
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            given = headers.get("authorization", "")
            scheme, _, credential = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), self.token):
                return 401, "text/plain", b"bearer token required\n"
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.render().encode()
        return 404, "text/plain", b"not found\n"


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
