"""The cluster roles: collectors publish batches of routed events to RabbitMQ, analyzers consume
partitions of them (docs/cluster.md).

* ``wire``: the batch format (msgpack): per item the Event, the rule ids it is evaluated for here,
  and whether this copy is the one stored.
* ``topology``: the exchange and partition queues, named from ``cluster.name``.
* ``routing``: the partition planner: which routing buckets an event goes to, for which rules.
* ``publisher``: publisher confirms, reconnection, per-partition order of a collector's batches.
* ``collector``: ``serve --role collector``; ``collector_http`` its /metrics and /healthz.
"""
