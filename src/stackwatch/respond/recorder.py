"""Where the ``stackwatch respond`` commands record their events while ``serve`` may be running.

Only one process appends to a store at a time (store/sqlite.py), and the collector is usually
that process. So the commands read the store as usual but append through this recorder: it
opens the store just for the append and closes it at once; when another process holds the
append lock it writes the events to the data folder's audit spool (one JSON event per line),
which ``serve`` takes in on its next tick, in order, once each (as the web's audit trail does).
Nothing is lost either way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackwatch.core.errors import StoreError
from stackwatch.core.event import Event, to_json
from stackwatch.store.admin import AUDIT_SPOOL


class SpoolingRecorder:
    """The part of the Store interface the respond commands use: ``alerts`` (read),
    ``append_events`` + ``flush`` (append, or spool)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.spooled = 0  # events written to the spool (serve held the store)

    def alerts(self, query: Any = None) -> Any:
        from stackwatch.store import open_store

        with open_store(self.data_dir, read_only=True) as store:
            return store.alerts(query)

    def append_events(self, events: Sequence[Event]) -> list[int]:
        if not events:
            return []
        from stackwatch.store import open_store

        try:
            with open_store(self.data_dir, background_index=False) as store:
                seqs = store.append_events(events)
                store.flush()
                return list(seqs or [])
        except StoreError:  # another process (serve) is appending: it ingests the spool
            with open(self.data_dir / AUDIT_SPOOL, "ab") as out:
                out.write(b"".join(to_json(event) + b"\n" for event in events))
            self.spooled += len(events)
            return []

    def flush(self) -> None:
        """Each append is already committed (or spooled)."""
