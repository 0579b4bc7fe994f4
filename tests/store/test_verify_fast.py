"""The fast paths of append and verify: the same bytes, state and verdicts as the reference code.

``record_ledger.scan_ledger`` (SQLite builds the normalized array) must agree byte for byte with the
reference record bytes on real-looking and awkward text, and must give up (None) on anything
the reference path would report, so that path can name the fault. ``MerkleAccumulator.extend``
(level by level) must equal appending leaf by leaf, cache nodes included.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest

from stackwatch.core.event import Initiator
from stackwatch.store.chain import GENESIS, verify_chain
from stackwatch.store.keys import init_store
from stackwatch.store.merkle import MerkleAccumulator
from stackwatch.store.record_ledger import iter_ledger, scan_ledger
from stackwatch.store.seal import parse_initial_key
from stackwatch.store.sqlite import SQLiteStore
from stackwatch.store.verify import verify_store
from stackwatch.testing import make_event

AWKWARD = [
    "tab\there, newline\nthen CR\r, bell\x07, unit sep\x1f, DEL\x7f",
    'quotes " and \\ backslash / slash <tag> & \'single\'',
    "accents é ü, CJK 日本, emoji 😀, line sep \u2028 para sep \u2029",
    "NUL\x00inside",
    "",
]


def _awkward_store(data: Path) -> bytes:
    result = init_store(data, background_index=False)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        make_event(time=t0 + timedelta(seconds=i), host=f"h{i % 2}", service="svc",
                   message=AWKWARD[i % len(AWKWARD)], raw=f"raw {i} " + AWKWARD[(i + 1) % len(AWKWARD)],
                   attrs={"k": AWKWARD[(i + 2) % len(AWKWARD)], "n": i}, origin=f"file:/v/ü{i % 3}",
                   initiator=Initiator(name=AWKWARD[(i + 3) % len(AWKWARD)] or None, source_ip="10.0.0.1"),
                   ref=f"r:{i}")
        for i in range(60)
    ]
    with SQLiteStore(data, checkpoint_every=17, batch_size=9, background_index=False) as store:
        for i in range(0, len(events), 7):
            store.append_events(events[i:i + 7])
    return parse_initial_key(result.initial_key)


def _conn(data: Path) -> sqlite3.Connection:
    return sqlite3.connect(data / "stackwatch.db", isolation_level=None)


def test_scan_agrees_with_the_reference_bytes_on_awkward_text(tmp_path: Path) -> None:
    k0 = _awkward_store(tmp_path / "d")
    conn = _conn(tmp_path / "d")
    size, head = conn.execute("SELECT size, head FROM ledger_state").fetchone()
    acc = MerkleAccumulator()
    seen: list[int] = []
    sizes = [s for (s,) in conn.execute("SELECT size FROM checkpoints ORDER BY epoch") if s]
    assert scan_ledger(conn, 1, size, GENESIS, acc, sizes, lambda s: seen.append(s) or True) == head
    assert seen == sizes and acc.size == size
    ref = MerkleAccumulator()
    assert verify_chain(iter_ledger(conn, 1), end_seq=size, merkle=ref) is None
    assert ref.to_bytes() == acc.to_bytes()
    report = verify_store(tmp_path / "d", initial_keys=[k0])
    assert report.ok() and report.records == size


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("message", "changed"),
        ("origin", None),  # the same origin bytes as a blob: a type change the reference path reports
        ("received", "text"),
        ("chain", "str"),
    ],
)
def test_scan_gives_up_where_the_reference_path_reports(tmp_path: Path, column: str, value: object) -> None:
    k0 = _awkward_store(tmp_path / "d")
    conn = _conn(tmp_path / "d")
    size = conn.execute("SELECT size FROM ledger_state").fetchone()[0]
    seq = 23
    if column == "origin":
        conn.execute("UPDATE events SET origin = CAST(origin AS BLOB) WHERE seq = ?", (seq,))
    elif column == "received":
        conn.execute("UPDATE events SET received = 'soon' WHERE seq = ?", (seq,))  # numeric text stays int
    elif column == "chain":
        conn.execute("UPDATE events SET chain = hex(chain) WHERE seq = ?", (seq,))
    else:
        conn.execute(f"UPDATE events SET {column} = ? WHERE seq = ?", (value, seq))
    assert scan_ledger(conn, 1, size, GENESIS, MerkleAccumulator()) is None
    assert scan_ledger(conn, 1, seq - 1, GENESIS) is not None  # everything before is still fine
    report = verify_store(tmp_path / "d", initial_keys=[k0])
    assert report.failed and report.first_bad is not None and report.first_bad.seq == seq


def test_scan_gives_up_on_a_missing_or_extra_record(tmp_path: Path) -> None:
    _awkward_store(tmp_path / "d")
    conn = _conn(tmp_path / "d")
    size = conn.execute("SELECT size FROM ledger_state").fetchone()[0]
    assert scan_ledger(conn, 1, size + 1, GENESIS) is None  # the last expected record is absent
    conn.execute("DELETE FROM events WHERE seq = 30")
    assert scan_ledger(conn, 1, size, GENESIS) is None


def test_scan_at_size_false_is_doubt(tmp_path: Path) -> None:
    _awkward_store(tmp_path / "d")
    conn = _conn(tmp_path / "d")
    size = conn.execute("SELECT size FROM ledger_state").fetchone()[0]
    assert scan_ledger(conn, 1, size, GENESIS, MerkleAccumulator(), [10], lambda s: False) is None


@pytest.mark.parametrize("low", [1, 2, 3, 8])
def test_batch_extend_equals_leaf_by_leaf(low: int) -> None:
    rng = random.Random(low)
    for _ in range(40):
        by_batch: list[tuple[int, int, bytes]] = []
        by_leaf: list[tuple[int, int, bytes]] = []
        a = MerkleAccumulator(node_sink=lambda *n, out=by_batch: out.append(n), sink_min_level=low)
        b = MerkleAccumulator(node_sink=lambda *n, out=by_leaf: out.append(n), sink_min_level=low)
        plain = MerkleAccumulator()
        k = 0
        for _ in range(rng.randint(1, 6)):
            batch = [sha256(str(k + j).encode()).digest() for j in range(rng.randint(0, 600))]
            k += len(batch)
            a.extend(batch)
            plain.extend(iter(batch))  # any iterable
            for h in batch:
                b.append(h)
            assert a.to_bytes() == b.to_bytes() == plain.to_bytes()
            assert a.root() == b.root()
        assert sorted(by_batch) == sorted(by_leaf)


def _two_step(events: list, names: dict, sources: dict, first: int, head: bytes):  # type: ignore[no-untyped-def]
    from stackwatch.store.record_ledger import chain_batch
    from stackwatch.store.rows import RowBuilder

    def new(host: str, service: str) -> int:
        sources[(host, service)] = len(names) + 1
        names[len(names) + 1] = (host, service)
        return len(names)

    return chain_batch(RowBuilder(sources, new).rows(events, first), names, head)


def test_one_pass_rows_equal_rows_then_chain() -> None:
    from stackwatch.store.rows import RowBuilder

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        make_event(time=t0 + timedelta(seconds=i), host=f"h{i % 3}", service="svc",
                   message=AWKWARD[i % len(AWKWARD)], raw=f"raw {i} \udcff" + AWKWARD[(i + 1) % len(AWKWARD)],
                   attrs={"k": AWKWARD[(i + 2) % len(AWKWARD)], 3: [i]} if i % 4 else {},
                   initiator=Initiator(name=f"u{i}", project=AWKWARD[i % len(AWKWARD)] or None),
                   origin="file:/x", ref=f"r:{i}")
        for i in range(40)
    ]
    names: dict[int, tuple[str, str]] = {}
    sources: dict[tuple[str, str], int] = {}

    def new(host: str, service: str) -> int:
        sources[(host, service)] = len(names) + 1
        names[len(names) + 1] = (host, service)
        return len(names)

    fused = RowBuilder(sources, new).chained_rows(events, 5, GENESIS, names)
    assert fused is not None
    assert fused == _two_step(events, dict(names), dict(sources), 5, GENESIS)


@pytest.mark.parametrize("odd", ["naive-time", "surrogate-message", "no-initiator"])
def test_one_pass_gives_way_to_the_careful_path(odd: str) -> None:
    from stackwatch.store.rows import RowBuilder

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [make_event(time=t0, host="h", service="s", message="m", raw="r") for _ in range(3)]
    if odd == "naive-time":
        events[1] = make_event(time=datetime(2026, 1, 1), host="h", service="s", message="m", raw="r")
    elif odd == "surrogate-message":
        events[1] = make_event(time=t0, host="h", service="s", message="bad \udcff", raw="r")
    else:
        events[1] = make_event(time=t0, host="h", service="s", message="m", raw="r", initiator=None)
    names = {1: ("h", "s")}
    sources = {("h", "s"): 1}
    assert RowBuilder(sources, lambda h, s: 1).chained_rows(events, 1, GENESIS, names) is None
    rows, leaves, _ = _two_step(events, dict(names), dict(sources), 1, GENESIS)
    assert len(rows) == len(leaves) == 3
