"""The search index's packed key values: one-to-one, exact where the text was, prefixes as
ranges that hold exactly the packed values the text prefix names, and an index file of the
previous version rebuilt."""

from __future__ import annotations

import random
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.event import Initiator
from stackwatch.search.query import parse
from stackwatch.store.base import EventQuery
from stackwatch.store.index_keys import SQL_FUNCTION, pack_key, prefix_ranges
from stackwatch.store.sqlite import INDEX_FILE, SQLiteStore
from stackwatch.store.sqlite_schema import INDEX_VERSION
from stackwatch.testing import make_event

T0 = datetime(2026, 3, 1, tzinfo=UTC)
UUID = "0e35cbdf-6b76-4a1a-8c47-96651c10d51b"
PACKED = [UUID, "req-" + UUID, UUID.replace("-", ""), "f" * 32, "0" * 32]
TEXT = [UUID.upper(), "req-" + UUID.upper(), "REQ-" + UUID, "req-7", UUID + "0", UUID[:-1], "x" + UUID,
        "10.20.0.11", "::1", "alice", "", "1001", "req-" + UUID[:8], UUID.replace("-", "").upper(), "g" * 32,
        UUID.replace("-", "_"), UUID + "\n", UUID.replace("-", " "), " " + UUID.replace("-", "")[1:],
        UUID[:-2] + " a", "req " + UUID, "req-" + UUID.replace("-", "")[:-4] + "abcd"]


@pytest.mark.parametrize("value", PACKED)
def test_a_canonical_value_is_packed_small(value: str) -> None:
    packed = pack_key(value)
    assert isinstance(packed, bytes)
    assert len(packed) == 17


@pytest.mark.parametrize("value", TEXT)
def test_a_value_not_in_a_canonical_shape_stays_its_text(value: str) -> None:
    assert pack_key(value) == value


def test_packing_is_one_to_one() -> None:
    rng = random.Random(7)
    values = PACKED + TEXT + [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(200)]
    values += ["req-" + v for v in values[-200:]] + [v.replace("-", "") for v in values[-200:]]
    assert len({pack_key(v) for v in values}) == len(set(values))


def _starts(prefix: str, values: list[str]) -> set[str]:
    """The packed values whose ranges for ``prefix`` hold them."""
    ranges = prefix_ranges(prefix)
    return {v for v in values
            if isinstance(p := pack_key(v), bytes) and any(lo <= p < hi for lo, hi in ranges)}


def _sample() -> list[str]:
    rng = random.Random(11)
    ips = ["1.2.3.4", "10.0.0.1", "10.2.0.1", "10.20.0.11", "10.200.1.1", "10.25.0.110", "100.0.0.0",
           "199.255.255.255", "2.0.0.0", "255.255.255.255", "0.0.0.0", "10.20.0.1", "10.20.0.119"]
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(300)] + [UUID, "f" * 8 + UUID[8:]]
    return ips + ids + ["req-" + i for i in ids] + [i.replace("-", "") for i in ids]


PREFIXES = ["", "1", "10", "10.", "10.2", "10.20.0.1", "10.20.0.11", "2", "25", "255.255.255.",
            "255.255.255.255", "0", "256", "1a", "10..", "1.2.3.4.", "req-", "r", "req-0", "req-0e35cbdf-",
            "0e35cbdf-6b7", "0e35cbdf6", "f", "ffffffff", "ffffffff-", UUID, UUID.replace("-", ""),
            "req-" + UUID, "g", "0E35"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_prefix_ranges_hold_exactly_the_packed_values_it_starts(prefix: str) -> None:
    values = _sample()
    packed = {v for v in values if isinstance(pack_key(v), bytes)}
    assert _starts(prefix, values) == {v for v in packed if v.startswith(prefix)}


def _open(path: Path) -> SQLiteStore:
    return SQLiteStore(path, background_index=False)


def _event(i: int, request_id: str, ip: str, user_id: str):
    return make_event(time=T0 + timedelta(seconds=i), message=f"msg {i}", request_id=request_id,
                      initiator=Initiator(source_ip=ip, id=user_id, name=f"user{i}"))


EVENTS = [("req-" + UUID, "10.20.0.11", UUID.replace("-", "")), ("REQ-" + UUID, "010.20.0.11", UUID),
          ("req-7", "10.20.0.110", UUID.upper()), ("req-" + UUID[:-1] + "c", "10.2.0.1", "1001")]


@pytest.mark.parametrize(("query", "seqs"), [
    (f"request_id:req-{UUID}", [1]), (f"request_id:REQ-{UUID}", [2]), ("request_id:req-7", [3]),
    ("request_id:req-*", [1, 3, 4]), (f"request_id:req-{UUID[:-1]}*", [1, 4]), ("request_id:req-0e*", [1, 4]),
    ("ip:10.20.0.11", [1]), ("ip:010.20.0.11", [2]), ("ip:10.20.0.11*", [1, 3]), ("ip:10.2*", [1, 3, 4]),
    ("ip:0*", [2]), (f"user:{UUID}", [2]), (f"user:{UUID.replace('-', '')}", [1]),
    (f"user:{UUID.upper()}", [3]),
    ("user:0e35*", [1, 2]), ("user:0E35*", [3]), ("user:100*", [4]), ("user:user1", [2]),
])
def test_searches_find_what_the_text_values_name(tmp_path: Path, query: str, seqs: list[int]) -> None:
    with _open(tmp_path) as store:
        store.append_events([_event(i, *fields) for i, fields in enumerate(EVENTS)])
        hits = store.search_events(EventQuery(match=parse(query), limit=100))
        assert sorted(stored.seq for stored in hits) == seqs
        assert store.count_events(EventQuery(match=parse(query))) == len(seqs)


def test_an_index_of_the_previous_version_is_rebuilt_packed(tmp_path: Path) -> None:
    with _open(tmp_path) as store:
        store.append_events([_event(0, *EVENTS[0])])
    index = sqlite3.connect(tmp_path / INDEX_FILE, isolation_level=None)
    index.execute(f"PRAGMA user_version = {INDEX_VERSION - 1}")
    # values version 2 holds could not match a packed lookup: the rebuild must replace them
    index.execute("UPDATE event_keys SET value = CAST(value AS TEXT) || '-old'")
    index.close()
    with _open(tmp_path) as store:
        assert [s.seq for s in store.search_events(EventQuery(request_id="req-" + UUID))] == [1]
    index = sqlite3.connect(tmp_path / INDEX_FILE)
    assert index.execute("PRAGMA user_version").fetchone()[0] == INDEX_VERSION
    assert index.execute("SELECT count(*) FROM event_keys WHERE typeof(value) = 'blob'").fetchone()[0] == 2
    index.close()


def _as_version_2(data: Path) -> None:
    """Make the index file as version 2 wrote it: the same keys, every value its text."""
    from stackwatch.store.sqlite import DB_FILE
    from stackwatch.store.sqlite_index import index_pending

    index = sqlite3.connect(data / INDEX_FILE, isolation_level=None)
    index.create_function(SQL_FUNCTION, 1, lambda value: value)  # no packing
    index.execute("DELETE FROM event_keys")
    index.execute("UPDATE meta SET value = 0 WHERE name = 'indexed_seq'")
    index.execute("INSERT INTO events_fts (events_fts) VALUES ('delete-all')")
    index.execute("ATTACH DATABASE ? AS ev", (str(data / DB_FILE),))
    index_pending(index)
    index.execute(f"PRAGMA user_version = {INDEX_VERSION - 1}")
    index.close()


@pytest.mark.parametrize("query", ["request_id:req-*", f"request_id:req-{UUID}", "ip:10.2*", "ip:10.20.0.11",
                                   f"user:{UUID}", "user:0e35*"])
def test_a_read_only_store_reads_an_older_index_as_text(tmp_path: Path, query: str) -> None:
    with _open(tmp_path) as store:
        store.append_events([_event(i, *fields) for i, fields in enumerate(EVENTS)])
        expected = [stored.seq for stored in store.search_events(EventQuery(match=parse(query), limit=100))]
    _as_version_2(tmp_path)
    with SQLiteStore(tmp_path, read_only=True) as reader:
        assert [s.seq for s in reader.search_events(EventQuery(match=parse(query), limit=100))] == expected
        assert reader.count_events(EventQuery(match=parse(query))) == len(expected)


@pytest.mark.parametrize(("value", "other"), [
    ("abcdefab-abcd-abcd-abcd-ab-cd-efabcd", "abcdefab-abcd-abcd-abcd-a-bcd-efabcd"),
    ("req-abcdefab-abcd-abcd-abcd-ab-cd-efabcd", "req-abcdefab-abcd-abcd-abcd-abcdefabcd--"),
])
def test_a_uuid_shape_with_more_dashes_stays_its_text(value: str, other: str) -> None:
    # dashes past the four a UUID has would be dropped with them: two values, one packing
    assert (pack_key(value), pack_key(other)) == (value, other)


@pytest.mark.parametrize(("query", "seqs"), [
    ("user:abcdefab-abcd-abcd-abcd-ab-cd-efabcd", [1]), ("user:abcdefab-abcd-abcd-abcd-a-bcd-efabcd", [2]),
    ("user:abcdefab-abcd-abcd-abcd-a-*", [2]),
])
def test_a_search_tells_apart_values_that_differ_only_in_extra_dashes(
        tmp_path: Path, query: str, seqs: list[int]) -> None:
    with _open(tmp_path) as store:
        store.append_events([_event(i, "req-7", "10.0.0.1", user_id) for i, user_id in enumerate(
            ["abcdefab-abcd-abcd-abcd-ab-cd-efabcd", "abcdefab-abcd-abcd-abcd-a-bcd-efabcd"])])
        assert [s.seq for s in store.search_events(EventQuery(match=parse(query), limit=100))] == seqs


def test_a_read_only_store_finds_keys_after_the_writer_rebuilds_an_older_index(tmp_path: Path) -> None:
    with _open(tmp_path) as store:
        store.append_events([_event(i, *fields) for i, fields in enumerate(EVENTS)])
    _as_version_2(tmp_path)
    with SQLiteStore(tmp_path, read_only=True) as reader:  # an API process, beside the writer
        with _open(tmp_path):  # the writer restarts: the index is rebuilt packed
            pass
        assert [s.seq for s in reader.search_events(EventQuery(request_id="req-" + UUID))] == [1]
        assert [s.seq for s in reader.search_events(EventQuery(match=parse(f"user:{UUID}")))] == [2]
