"""Event ids across writers: a log per writer, one number space for reads.

Each writer (an analyzer process, ``writer=<name>``) appends to its own log, as Certificate
Transparency shards do: its records are numbered ``seq`` 1, 2, 3... densely, chained, Merkle
logged and checkpointed on their own, so writers never wait on one another for a number.
A global dense seq would need one counter every writer takes in turn; instead an event's
store-wide id is ``writer << WRITER_SHIFT | seq`` (the first writer is number 0, so a store
with one writer numbers its events 1, 2, 3... as the embedded store does). Searches order by
event time, then id; a live tail does not compare ids, which are increasing within a writer but
not across writers: it follows commit positions (``ticks.py``).
"""

from __future__ import annotations

from typing import Final

WRITER_SHIFT: Final = 40
"""Up to 2**40 (10^12) records per writer, 2**23 writers within a signed 64-bit id."""
SEQ_MASK: Final = (1 << WRITER_SHIFT) - 1


def event_id(writer: int, seq: int) -> int:
    return writer << WRITER_SHIFT | seq


def split(event_id: int) -> tuple[int, int]:
    """(writer, seq) of an id."""
    return event_id >> WRITER_SHIFT, event_id & SEQ_MASK
