"""``/metrics`` and ``/healthz`` of an analyzer (``listen.metrics``, same token as ``serve``).

Per partition: whether this analyzer is its active consumer or waits as a standby, the batches
ready in its queue (read from the broker once per heartbeat), batches and routed copies taken
in, home copies stored, redeliveries skipped, alert changes, and the lag of the last commit
(from the publish of its oldest batch, and from the newest event's own time). ``/healthz`` is
503 once the broker connection is gone or a partition worker failed (the process then exits),
and once a partition was given up (its commit refused, or failing past the stall limit: the
partition went to a standby; ``given_up`` says why, until this analyzer subscribes to it again
as a standby after a back-off).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson

from stackwatch.cluster.collector_http import CollectorHTTP
from stackwatch.config.schema import Address
from stackwatch.pipeline.monitor_http import _labels

if TYPE_CHECKING:
    from stackwatch.cluster.analyzer import Analyzer

# (metric, type, help, Partition attribute)
_PARTITION_FIGURES: tuple[tuple[str, str, str, str], ...] = (
    (
        "stackwatch_analyzer_batches_total",
        "counter",
        "Batches committed and acknowledged.",
        "committed_batches",
    ),
    (
        "stackwatch_analyzer_skipped_batches_total",
        "counter",
        "Redelivered batches already committed (skipped).",
        "skipped_batches",
    ),
    (
        "stackwatch_analyzer_refused_batches_total",
        "counter",
        "Batches dead-lettered: undecodable, or a bucket or partition out of range.",
        "refused_batches",
    ),
    ("stackwatch_analyzer_events_in_total", "counter", "Routed event copies detected on.", "events_in"),
    (
        "stackwatch_analyzer_events_stored_total",
        "counter",
        "Home copies committed to the store (out).",
        "stored_events",
    ),
    (
        "stackwatch_analyzer_alert_changes_total",
        "counter",
        "Alerts raised, updated or resolved.",
        "alert_changes",
    ),
)


def render_analyzer_metrics(analyzer: Analyzer) -> str:
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float | int | None]]) -> None:
        out.extend((f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"))
        out.extend(f"{name}{labels} {value}" for labels, value in samples if value is not None)

    member = analyzer.member
    numbers = sorted(set(analyzer.subscribed) | set(analyzer.partitions))
    # each partition's labels built once per render, not once per metric (a scrape every 0.1 s,
    # as the cluster benchmark polls, rendered them about a hundred times each)
    per = {n: _labels(member=member, partition=str(n), queue=analyzer.topology.queue(n))
           for n in numbers}.__getitem__

    metric(
        "stackwatch_info",
        "gauge",
        "The role and member name of this process.",
        [(_labels(role="analyzer", member=member, cluster=analyzer.topology.cluster), 1)],
    )
    metric(
        "stackwatch_partition_active",
        "gauge",
        "1 where this analyzer is the partition's active consumer, 0 where it waits as a standby.",
        [(per(n), int(n in analyzer.partitions)) for n in numbers],
    )
    metric(
        "stackwatch_partition_queue_depth",
        "gauge",
        "Batches ready in the partition's queue (read from the broker at the last heartbeat).",
        [(per(n), analyzer.depths.get(n)) for n in numbers],
    )
    partitions = sorted(analyzer.partitions.items())
    for name, kind, help_text, attribute in _PARTITION_FIGURES:
        metric(name, kind, help_text, [(per(n), getattr(p, attribute)) for n, p in partitions])
    metric(
        "stackwatch_analyzer_commit_failures_total",
        "counter",
        "Failed commit attempts of the partition (retried while transient, else the partition given up).",
        [(per(n), p.commit_failures) for n, p in partitions],
    )
    metric(
        "stackwatch_analyzer_commit_stalled_seconds",
        "gauge",
        "How long the partition's current commit has been failing (0: it is not).",
        [(per(n), round(time.monotonic() - p.stalled_since, 3) if p.stalled_since is not None else 0)
         for n, p in partitions],
    )
    metric(
        "stackwatch_analyzer_partition_given_up",
        "gauge",
        "1 for a partition this analyzer gave up (its commit refused or failing too long): see the log.",
        [(_labels(member=member, partition=str(n), queue=analyzer.topology.queue(n)), 1)
         for n in sorted(analyzer.given_up)],
    )
    metric(
        "stackwatch_analyzer_partition_give_ups_total",
        "counter",
        "Times this analyzer gave the partition up (each followed by a back-off, then a standby again).",
        [(_labels(member=member, partition=str(n), queue=analyzer.topology.queue(n)), count)
         for n, count in sorted(analyzer.give_ups.items())],
    )
    metric(
        "stackwatch_analyzer_commit_lag_seconds",
        "gauge",
        "From the publish of the oldest batch of the last commit to that commit.",
        [(per(n), p.commit_lag) for n, p in partitions],
    )
    metric(
        "stackwatch_analyzer_event_lag_seconds",
        "gauge",
        "From the newest event time of the last commit to that commit.",
        [(per(n), p.event_lag) for n, p in partitions],
    )
    metric(
        "stackwatch_analyzer_last_commit_timestamp_seconds",
        "gauge",
        "When the partition last committed.",
        [(per(n), round(p.last_commit, 3) or None) for n, p in partitions],
    )
    metric(
        "stackwatch_analyzer_checkpoint_cpu_seconds_total",
        "counter",
        "CPU seconds spent capturing the partition's detection state for its checkpoints (once per commit).",
        [(per(n), round(p.checkpoint_cpu, 6)) for n, p in partitions],
    )
    metric(
        "stackwatch_analyzer_checkpoint_bytes",
        "gauge",
        "Size of the partition's last checkpointed detection state.",
        [(per(n), p.checkpoint_bytes) for n, p in partitions],
    )
    metric(
        "stackwatch_analyzer_store_cpu_seconds_total",
        "counter",
        "CPU seconds of the partition's store commits (events, alerts, checkpoint).",
        [(per(n), round(p.store_cpu, 6)) for n, p in partitions],
    )
    metric(
        "stackwatch_analyzer_takeovers_total",
        "counter",
        "Partitions this analyzer became the active consumer of from a checkpoint (a takeover).",
        [(_labels(member=member), analyzer.takeovers)],
    )
    metric(
        "stackwatch_notifications_pending",
        "gauge",
        "Notifications waiting for delivery.",
        [("", analyzer.dispatcher.pending())],
    )
    metric(
        "stackwatch_up",
        "gauge",
        "1 while the analyzer holds its broker connection.",
        [("", int(analyzer.healthy()))],
    )
    metric(
        "stackwatch_uptime_seconds",
        "gauge",
        "Seconds since start.",
        [("", round(time.time() - analyzer.started, 3))],
    )
    return "\n".join(out) + "\n"


class AnalyzerHTTP(CollectorHTTP):
    """The collector's listener (the same request handling and bearer check), the analyzer's figures."""

    def __init__(self, analyzer: Analyzer, listen: Address, token: str) -> None:
        super().__init__(analyzer, listen, token)  # type: ignore[arg-type]
        self.analyzer = analyzer

    def health(self) -> tuple[bool, bytes]:
        analyzer = self.analyzer
        healthy = analyzer.healthy()
        if healthy:
            status = "ok"
        elif analyzer.given_up and analyzer._failed is None and not analyzer._lost.is_set():
            status = "partitions given up"
        else:
            status = "broker connection lost"
        return healthy, orjson.dumps(
            {
                "status": status,
                "role": "analyzer",
                "active": sorted(analyzer.partitions),
                # partition number -> why it was given up (the commit's error)
                "given_up": {str(n): reason[:500] for n, reason in sorted(analyzer.given_up.items())},
                "uptime": round(time.time() - analyzer.started, 3),
            }
        )

    def render(self) -> str:
        return render_analyzer_metrics(self.analyzer)
