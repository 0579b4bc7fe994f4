"""The sections of ``stackwatch serve``'s configuration file, declared once with help text.

Sources and sinks are typed by their own modules (``sources/<type>.py``'s ``Settings``,
``alerts/<type>.py``'s ``Settings``), so a plugin brings its settings with it. ``web`` and
``respond`` are owned by the API and responder modules: they are handed the raw mapping.
"""


from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stackwatch.config.schema import Address, Seconds, setting
from stackwatch.config.secrets import Secret
from stackwatch.core.alert import ALERT_SEVERITIES


@dataclass(frozen=True)
class StoreSettings:
    url: str = setting(
        "/var/lib/stackwatch/data",
        "a data folder (embedded SQLite), sqlite:///dir or "
        "postgresql://user@host/db (no password in the URL: use `password`)",
    )
    password: Secret | None = setting(None, "the PostgreSQL password, by reference")
    options: dict[str, Any] = setting({}, "backend options passed to open_store (e.g. batch_size)")

    def validate(self) -> None:
        if urlsplit(self.url).password:
            raise ValueError("the store URL must not contain a password: use `password: $env:NAME`")

    def embedded_folder(self) -> Path | None:
        """The data folder of an embedded (SQLite) store; None for a server (PostgreSQL)."""
        if self.url.startswith("sqlite:"):
            return Path(self.url.removeprefix("sqlite:///").removeprefix("sqlite://"))
        return None if "://" in self.url else Path(self.url)

    def open_url(self) -> str:
        """The URL with the password filled in (for the backend only; never logged)."""
        if self.password is None or "://" not in self.url:
            return self.url
        parts = urlsplit(self.url)
        user, _, host = parts.netloc.rpartition("@")
        from urllib.parse import quote

        netloc = f"{user}:{quote(self.password.value, safe='')}@{host}" if user else parts.netloc
        return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class RulesSettings:
    builtin: bool = setting(True, "load the built-in rule packs")
    paths: list[str] = setting([], "more rule files or folders (YAML rules and Sigma rules)")
    strict: bool = setting(
        False, "refuse to start when any rule file has a problem (default: report it and leave that rule out)"
    )


@dataclass(frozen=True)
class ExpectedSource:
    host: str = setting(help="host name (glob patterns allowed where the absence rule allows them)")
    service: str = setting(help="service / program name")


@dataclass(frozen=True)
class RouteSettings:
    sinks: list[str] = setting(help="names of the sinks that get the alerts this route matches")
    categories: list[str] = setting(["*"], "alert categories (glob patterns, e.g. auth.*)")
    min_severity: str = setting("low", "lowest alert severity routed: low, medium, high, critical")
    name: str = setting("", "a label for logs and metrics")

    def validate(self) -> None:
        if self.min_severity not in ALERT_SEVERITIES:
            raise ValueError(f"min_severity must be one of {', '.join(ALERT_SEVERITIES)}")
        if not self.sinks:
            raise ValueError("a route needs at least one sink")


@dataclass(frozen=True)
class ThrottleSettings:
    update_interval: Seconds = setting(
        Seconds(600),
        "an alert that keeps firing is re-sent at most "
        "this often per sink (new and resolved alerts are always sent)",
    )
    max_per_minute: int = setting(
        60,
        "most notifications one sink sends per minute; the rest are "
        "counted as throttled (they stay in the store)",
    )


@dataclass(frozen=True)
class ListenSettings:
    metrics: Address | None = setting(
        Address("127.0.0.1", 9108), "self-monitoring HTTP listener (/metrics, /healthz); null disables it"
    )
    metrics_token: Secret | None = setting(
        None, "bearer token /metrics requires (required when the listener is on); /healthz is open"
    )

    def validate(self) -> None:
        if self.metrics is not None and self.metrics_token is None:
            raise ValueError(
                "listen.metrics_token is required when listen.metrics is set "
                "(e.g. metrics_token: $env:STACKWATCH_METRICS_TOKEN)"
            )
        # an unset or empty variable gives an empty token, which 'Authorization: Bearer' with
        # nothing after it matched: /metrics would be open to anyone who can reach the port
        token = self.metrics_token
        if self.metrics is not None and token is not None and not token.value.strip():
            raise ValueError(f"listen.metrics_token ({token.reference}) is empty")


@dataclass(frozen=True)
class LimitsSettings:
    queue_size: int = setting(
        20000,
        "records each source may hold waiting for the pipeline; "
        "when full TCP/file/AMQP reads pause and UDP datagrams are dropped (counted)",
    )
    batch_size: int = setting(5000, "most events committed to the store in one transaction")
    commit_interval: Seconds = setting(
        Seconds(0.2), "longest time an event waits before it is committed (and its alerts sent)"
    )
    fair_quantum: int = setting(
        256,
        "records taken from one source before the next source's turn, "
        "so a flood on one source does not starve the others",
    )
    tick_interval: Seconds = setting(Seconds(1), "wall-clock tick driving absence/silence detection")
    heartbeat_interval: Seconds = setting(
        Seconds(5),
        "period of the monitor.heartbeat event (service stackwatch), so a rule can watch the monitor itself",
    )
    input_silence: Seconds = setting(
        Seconds(300),
        "raise logging.silence when no source at all delivered anything for this long (0 disables)",
    )
    stall_after: Seconds = setting(
        Seconds(5),
        "the pipeline counts as stalled (healthz 503, and a "
        "logging.silence alert for stackwatch itself) after this long without progress",
    )
    drop_check_interval: Seconds = setting(
        Seconds(10), "how often dropped-record counters are checked and alerted on"
    )
    baselines_interval: Seconds = setting(
        Seconds(300),
        "how often serve writes the spike rules' learned baselines and the orphan ledger to "
        "state_dir (also at stop): what a kill -9 can lose of them",
    )
    future_tolerance: Seconds = setting(
        Seconds(300),
        "an event stamped further than this past its receive time is detected and stored at its "
        "receive time (attrs.future_time keeps the claimed one), so a sender cannot move the clock",
    )
    shutdown_timeout: Seconds = setting(
        Seconds(15),
        "on SIGTERM: most time spent flushing, committing, acknowledging and delivering pending alerts",
    )


@dataclass(frozen=True)
class ClusterSettings:
    """The cluster roles (``serve --role collector|analyzer``, docs/cluster.md): where batches of
    events travel between collectors and analyzers. ``--role all`` (the default) ignores it."""

    name: str = setting(
        "stackwatch", "the cluster's name: its RabbitMQ exchanges and queues are sw.<name>.*"
    )
    amqp_url: str = setting(
        "amqp://stackwatch@127.0.0.1:5672/", "the broker URL without the password (amqps:// for TLS)"
    )
    password: Secret | None = setting(None, "the broker password, by reference")
    partitions: int = setting(
        8, "partition queues: the most analyzers that can work at once (same on every member)"
    )
    buckets: int = setting(
        256, "routing buckets hashed onto the partitions; many more than partitions (same on every member)"
    )
    member: str = setting("", "this process's name in the cluster (default: <hostname>-<role>)")
    batch_events: int = setting(
        2000, "most events in one published batch (1..20000, the wire format's limit)"
    )
    batch_delay: Seconds = setting(Seconds(0.2), "longest a collector holds an event before publishing")
    max_unconfirmed: int = setting(
        20000, "events published but not yet confirmed by the broker; past it sources pause"
    )
    reconnect_interval: Seconds = setting(Seconds(2), "wait between broker reconnection attempts")
    commit_stall_limit: Seconds = setting(
        Seconds(300), "an analyzer gives a partition up after its commit failed this long with transient "
        "errors (the database away); 1 s .. 1 day, below RabbitMQ's consumer_timeout"
    )

    def validate(self) -> None:
        from stackwatch.cluster.topology import MAX_PARTITIONS, Topology

        Topology(self.name, max(1, min(self.partitions, MAX_PARTITIONS)))  # the name's check
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be 1..{MAX_PARTITIONS}")
        if not 1 <= self.buckets <= 65536:
            raise ValueError("buckets must be 1..65536")
        if self.member:  # empty: <hostname>-<role>, checked where the role starts
            from stackwatch.cluster.topology import check_member

            check_member(self.member)
        if urlsplit(self.amqp_url).password:
            raise ValueError("the broker URL must not contain a password: use `password: $env:NAME`")
        from stackwatch.cluster.wire import MAX_BATCH_ITEMS

        # a batch over the wire's item limit is refused by encode_batch, which stops the collector
        # (and again after every restart, on the same records): refused here instead
        if not 1 <= self.batch_events <= MAX_BATCH_ITEMS:
            raise ValueError(f"batch_events must be 1..{MAX_BATCH_ITEMS} (the wire format's limit)")
        if self.max_unconfirmed < self.batch_events:
            raise ValueError("max_unconfirmed must be at least batch_events")
        # below a second every database hiccup gives partitions up; past a day a stalled partition
        # is long gone from the broker anyway (consumer_timeout closes its channel first)
        if not 1 <= float(self.commit_stall_limit) <= 86400:
            raise ValueError("commit_stall_limit must be 1s..1d")

    def connect_url(self) -> str:
        """The URL with the password filled in (for the connection only; never logged)."""
        if self.password is None:
            return self.amqp_url
        from urllib.parse import quote

        parts = urlsplit(self.amqp_url)
        user, _, host = parts.netloc.rpartition("@")
        netloc = f"{user or 'guest'}:{quote(self.password.value, safe='')}@{host}"
        return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class Settings:
    """The whole configuration of ``stackwatch serve``."""

    path: str = ""
    hostname: str = field(default_factory=socket.gethostname)
    state_dir: str = "/var/lib/stackwatch/state"
    store: StoreSettings = field(default_factory=StoreSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    maintenance: Any = None  # a MaintenanceSchedule (validated at load)
    expected_sources: list[ExpectedSource] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)  # each a sources/<type>.py Settings
    sinks: list[Any] = field(default_factory=list)  # each an alerts/<type>.py Settings
    routing: list[RouteSettings] = field(default_factory=list)
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    listen: ListenSettings = field(default_factory=lambda: ListenSettings(metrics=None))
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    web: Any = None  # stackwatch.api.settings.WebSettings, or the raw mapping when that module is absent
    respond: Any = None  # stackwatch.respond.policy.ResponsePolicy, or the raw mapping
    auth: Any = None  # stackwatch.api.keystone_settings.AuthSettings, or the raw mapping

    def source(self, name: str) -> Any:
        for item in self.sources:
            if item.name == name:
                return item
        raise KeyError(name)

    def sink(self, name: str) -> Any:
        for item in self.sinks:
            if item.name == name:
                return item
        raise KeyError(name)
