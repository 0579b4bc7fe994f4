"""``/metrics`` and ``/healthz`` of a collector (``listen.metrics``, same token as ``serve``).

The per-source figures are ``serve``'s (``pipeline/monitor_http.py``); instead of the store's,
the collector's own: events routed, copies and batches published, events acknowledged, what
waits for the broker's confirm, retries and reconnections. ``/healthz`` is 503 while the broker
is unreachable with records waiting (the sources are paused then).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson

from stackwatch.config.schema import Address
from stackwatch.pipeline.monitor_http import _SOURCE_COUNTERS, MonitorHTTP, _labels

if TYPE_CHECKING:
    from stackwatch.cluster.collector import Collector

_HELP = {
    "stackwatch_collector_events_total": ("counter", "Events routed by this collector."),
    "stackwatch_collector_copies_total": ("counter", "Event copies published (one per key)."),
    "stackwatch_collector_batches_total": ("counter", "Batches the broker confirmed."),
    "stackwatch_collector_idle_batches_total": ("counter", "Batches with only the watermark, no records."),
    "stackwatch_collector_acknowledged_events_total": ("counter", "Events whose sources were acknowledged."),
    "stackwatch_collector_unconfirmed": ("gauge", "Copies routed, not yet confirmed by the broker."),
    "stackwatch_collector_queue_depth": ("gauge", "Records waiting in the source queues."),
    "stackwatch_collector_publish_retries_total": ("counter", "Batches sent again (not confirmed)."),
    "stackwatch_collector_reconnects_total": ("counter", "Failed attempts to reach the broker."),
    "stackwatch_collector_paused_turns_total": ("counter", "Turns the sources waited: too much unconfirmed."),
    "stackwatch_collector_malformed_records_total": (
        "counter", "Records a source's decoder failed on, published raw as unparsed (malformed)."),
    "stackwatch_collector_refused_batches_total": (
        "counter", "Batches the wire format refused (over its size limit): sent again in halves."),
    "stackwatch_collector_salvaged_events_total": (
        "counter", "Events the wire format refused alone: sent as their raw text (unparsed, wire_refused)."),
    "stackwatch_collector_lost_events_total": ("counter", "Events not even their raw text could carry."),
}


def render_collector_metrics(collector: Collector) -> str:
    out: list[str] = []
    for source in collector.sources:
        source.refresh_counters()
    for name, kind, help_text, counter in _SOURCE_COUNTERS:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        out += [f"{name}{_labels(source=s.name)} {getattr(s.counters, counter)}" for s in collector.sources]
    member = _labels(member=collector.member)
    info = _labels(role="collector", member=collector.member, cluster=collector.topology.cluster)
    out += ["# HELP stackwatch_info The role and member name of this process.",
            "# TYPE stackwatch_info gauge", f"stackwatch_info{info} 1"]
    for name, value in collector.metrics().items():
        kind, help_text = _HELP.get(name, ("gauge", name))
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{member} {value}"]
    out += ["# HELP stackwatch_up 1 while the collector reaches the broker or has nothing waiting.",
            "# TYPE stackwatch_up gauge", f"stackwatch_up {int(collector.healthy())}"]
    return "\n".join(out) + "\n"


class CollectorHTTP(MonitorHTTP):
    def __init__(self, collector: Collector, listen: Address, token: str) -> None:
        super().__init__(collector, listen, token)  # type: ignore[arg-type]
        self.collector = collector

    def health(self) -> tuple[bool, bytes]:
        collector = self.collector
        healthy = collector.healthy()
        return healthy, orjson.dumps({"status": "ok" if healthy else "broker unreachable",
                                      "role": "collector", "queue_depth": collector.queue_depth(),
                                      "uptime": round(time.time() - collector.started, 3)})

    def render(self) -> str:
        return render_collector_metrics(self.collector)
