"""``store migrate FOLDER --to postgresql://`` of a folder that retention already pruned: the
anchor's ``seq_offset`` (new seq = folder seq + seq_offset) must name where each folder record
is in the new log, so an auditor linking the two logs finds the records."""

from __future__ import annotations

from pathlib import Path

from stackwatch.store.postgres.ids import event_id
from stackwatch.store.postgres.move import move_to_postgres
from stackwatch.store.postgres.store import PostgresStore
from stackwatch.store.retention import expire
from stackwatch.store.sqlite import open_store
from tests.pgdb import fresh_database
from tests.store.blocks_attack import Sealed
from tests.store.blocks_attack import event as record


def test_the_anchor_maps_a_pruned_folders_records_to_their_new_seqs(sealed: Sealed, tmp_path: Path) -> None:
    with open_store(sealed.data, background_index=False) as store:
        pruned_to = expire(store, max_size=1).pruned_to
        assert pruned_to > 0
        store.append_events([record(1000 + n) for n in range(40)])  # records after the pruned ones
        first = pruned_to + 1
        kept = {e.seq: e.event for e in store.get_events(range(first, first + 1000))}
        assert len(kept) > 10
    with fresh_database() as url:
        result = move_to_postgres(sealed.data, url, keys=tmp_path / "wkeys", writer="pruned",
                                  initial_keys=[sealed.k0])
        assert result.anchor["first_seq"] == first
        offset = result.anchor["seq_offset"]
        with PostgresStore(url, read_only=True) as shared:
            number = dict((n, i) for i, n in shared.writers())["pruned"]
            for seq, stored in kept.items():
                (found,) = shared.get_events([event_id(number, seq + offset)])
                assert (found.event.ref, found.event.message) == (stored.ref, stored.message), seq
