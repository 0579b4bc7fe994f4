"""One order for records of the same time from several hosts, in ``analyze`` and in a
cluster partition alike: time, then host, each host's records in their own order (file order,
arrival order).

Timestamps tie often: RFC 3164 syslog and Apache's access log count whole seconds, so two
keystone controllers behind one load balancer log a failed and a successful login of one
address in the same second. Which comes first decides a sequence rule (five failures then a
success): taken in file order in ``analyze`` (the merge's ties go to the earlier file) and in
arrival order in a partition (the collector that published first), the same logs could give
an alert in one and not in the other. Both now break ties the same way:
``in_tie_order`` in ``analyze`` (pipeline/analyze.py) and ``tie_key`` in the partition's
reorder buffer (cluster/reorder.py).

Not by service within a host: one host's records of one second keep the order they were
written in (its syslog file, or its one connection to a collector), which is causal: a unit
stop and the shutdown that explains it, logged by two programs in one second, ordered by
service name would put the stop first and alert on it.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Final

from stackwatch.core.event import Event

MAX_HELD: Final = 2000
MAX_HELD_BYTES: Final = 1 << 20
"""Most records (and raw bytes) of a batch's last run of equal times held for the next batch: a
file whose records all carry one time (unparsed lines stamped with their receive time, sixty
lines of 4 MiB) would otherwise be held whole, past analyze's bound on a store batch's bytes.
A longer run is passed on in parts, each in tie order."""

tie_key = operator.attrgetter("time", "host")
"""An event's place among records of the same time (a stable sort keeps each host's order)."""
_time_of = operator.attrgetter("time")


def in_tie_order(batches: Iterable[list[Event]]) -> Iterator[list[Event]]:
    """``batches`` (merged in time order) with each run of equal times in ``tie_key`` order.
    The last run of a batch waits for the next one (the run may go on there). A batch that
    goes back in time (a file out of order) is left as it is: only ties are ordered, never
    records of different times."""
    held: list[Event] = []
    for events in batches:
        if held:
            events = held + events
            held = []
        if not events:
            continue
        times = list(map(_time_of, events))
        if times != sorted(times):
            yield events
            continue
        events = sorted(events, key=tie_key)  # only ties move: the times are sorted already
        cut = bisect_left(times, times[-1])
        held = events[cut:]
        if len(held) > MAX_HELD or sum(len(e.raw) for e in held) > MAX_HELD_BYTES:
            cut, held = len(events), []
        if cut:
            yield events[:cut]
    if held:
        yield held
