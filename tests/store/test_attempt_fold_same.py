"""The writer's login-attempt fold gives what it gave before its per-row work was cut.

``fold_minutes`` (indexed, not unpacked) was rewritten and the ``login_attempts`` insert made
an upsert for the CADF benchmark's all-logins case (README, "Against the targets"); an
attempt to cut ``AttemptCorrelator.push`` the same way measured no gain and was left out, its
previous code is kept below as the oracle of the fold as a whole. Both run over the same
streams, cut into the same batches, and every released ``login_attempts`` row, the held seqs,
the last seq folded and the ``attempt_minutes`` rows must be equal. Streams: the demo, the
shared corpus, a generated corpus with every keystone channel (proxy, access line,
keystone.log, CADF notification), the CADF benchmark's envelopes, and a hand-made one with
what the fold must not change: tenant hosts, other services, out-of-order times,
``user.not_found`` lines, a record stored twice, copies of one login across channels.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from benchmarks.synthetic import write_cadf

from stackwatch.core.event import Event
from stackwatch.pipeline.reader import discover, read_events
from stackwatch.scenario import demo_dataset, generate
from stackwatch.store import sqlite_attempts
from stackwatch.store.attempt_fold import (
    MINUTE,
    MIXED,
    AttemptCorrelator,
    AttemptRow,
    fold_minutes,
    is_folded,
)
from stackwatch.store.sqlite_attempts import AttemptFolder
from stackwatch.testing import make_event


class _PreviousPush:
    """``AttemptCorrelator.push`` and ``_push`` as they were (the oracle)."""

    correlator: Any
    _upto: int
    _seq_of: dict[int, int]
    _primary_seq: dict[Any, int]
    _not_found: dict[str, int]

    _take: Any  # AttemptCorrelator's, unchanged

    def push(self, events: Sequence[Event], first_seq: int) -> None:
        correlator = self.correlator
        for index, event in enumerate(events):
            if is_folded(event):
                self._push(first_seq + index, event)
        if events:
            self._upto = first_seq + len(events) - 1
            if correlator.pending:
                self._take(correlator.release(events[-1].time.timestamp()))

    def _push(self, seq: int, event: Event) -> None:
        if event.action == "user.not_found":
            if event.request_id:
                self._not_found[event.request_id] = seq
        else:
            self._seq_of[id(event)] = seq
            self._primary_seq[(event.host, event.ref)] = seq
        self._take(self.correlator.push(event, event.time.timestamp()))


class PreviousFolder(_PreviousPush, AttemptFolder):  # type: ignore[misc]
    pass


class PreviousCorrelator(_PreviousPush, AttemptCorrelator):  # type: ignore[misc]
    pass


def previous_fold_minutes(rows: Iterable[AttemptRow]) -> list[tuple[Any, ...]]:
    folded: dict[tuple[Any, ...], list[Any]] = {}
    for _seq, time, ip, account, project, outcome, hash_, *_ in rows:
        key = (time // MINUTE, ip, account, project, outcome)
        row = folded.get(key)
        if row is None:
            folded[key] = [1, 1 if hash_ else 0, hash_, time, time]
            continue
        row[0] += 1
        if hash_:
            row[1] += 1
            row[2] = hash_ if row[2] in ("", hash_) else MIXED
        row[3], row[4] = min(row[3], time), max(row[4], time)
    return [(*key, *row) for key, row in folded.items()]


def _run(folder: AttemptCorrelator, events: list[Event], batch: int) -> tuple[list[Any], ...]:
    """Push ``events`` a batch at a time as the writer does (write after each batch), then
    finish: every released row, the held seqs after each batch, the last seq folded."""
    rows: list[AttemptRow] = []
    held: list[list[int]] = []
    copies: list[Any] = []
    for start in range(0, len(events), batch):
        folder.push(events[start:start + batch], start + 1)
        released = list(folder.released())
        if folder.tracks_copies:
            copies += [folder.copies(row) for row in released]
        rows += released
        folder.written()
        held.append(folder.held())
    folder.finish()
    rows += folder.released()
    return rows, held, [folder.upto], copies


def _assert_same(events: list[Event]) -> int:
    logins = sum(1 for e in events if is_folded(e))
    assert logins, "the stream must hold keystone logins, or it tests nothing"
    for batch in (1, 7, 500, 20_000):
        for new, old in ((AttemptFolder(), PreviousFolder()), (AttemptCorrelator(), PreviousCorrelator())):
            got, want = _run(new, events, batch), _run(old, events, batch)
            assert got == want
            assert fold_minutes(got[0]) == previous_fold_minutes(want[0])
    return logins


def _read(root: Path) -> list[Event]:
    return list(read_events(discover([str(root)])))


def test_the_demo(tmp_path: Path) -> None:
    assert _assert_same(_read(demo_dataset(tmp_path / "logs", seed=7))) > 10


def test_a_generated_corpus_with_every_keystone_channel(tmp_path: Path) -> None:
    generate(tmp_path / "logs", seed=11, lines=20_000, duration=timedelta(hours=2))
    events = _read(tmp_path / "logs")
    assert {e.kind for e in events if is_folded(e)} >= {"notification", "oslo_log", "httpd_access"}
    assert _assert_same(events) > 100


def test_the_shared_corpus(corpus: Path) -> None:
    assert _assert_same(_read(corpus)) >= 3


def test_the_cadf_benchmark_envelopes(tmp_path: Path) -> None:
    write_cadf(tmp_path / "cadf" / "ctl1" / "notifications.json", 3_000, seed=7)
    assert _assert_same(_read(tmp_path / "cadf")) == 3_000


def test_the_edges_the_fast_path_must_keep() -> None:
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    events: list[Event] = []
    for i in range(400):
        at = t0 + timedelta(seconds=i * 0.7 - (5 if i % 13 == 0 else 0))  # some out of order
        rid = f"req-{i // 3}"
        common: dict[str, Any] = {"time": at, "request_id": rid, "ref": f"r{i}", "outcome": "failure",
                                  "attrs": {"partial_password_hash": f"h{i % 4}"} if i % 2 else {}}
        who = {"source_ip": f"198.51.100.{i % 5}", "name": f"u{i % 7}" if i % 3 else None}
        events.append(make_event(service="keystone", action="authenticate", kind="cadf", initiator=who,
                                 **common))
        if i % 3 == 1:  # the log-line copy of the same login, a moment later
            events.append(make_event(service="keystone", action="authenticate", kind="oslo_log",
                                     initiator={"source_ip": who["source_ip"]},
                                     **{**common, "ref": f"log{i}", "time": at + timedelta(seconds=0.1)}))
        if i % 5 == 0:
            events.append(make_event(service="keystone", action="user.not_found", kind="oslo_log",
                                     initiator={"name": f"ghost{i}"}, **{**common, "ref": f"nf{i}"}))
        if i % 11 == 0:  # a tenant's line that reads as keystone's, another service, a lockout
            events.append(make_event(service="keystone", action="authenticate", host="tenant/abc/vm1",
                                     kind="cadf", initiator=who, **{**common, "ref": f"t{i}"}))
            events.append(make_event(service="nova", action="authenticate", kind="cadf", initiator=who,
                                     **{**common, "ref": f"n{i}"}))
            events.append(make_event(service="keystone", action="account.locked", kind="cadf",
                                     initiator=who, **{**common, "ref": f"l{i}"}))
        if i % 17 == 0:  # the same record stored twice (one host, one ref)
            events.append(events[-1])
    assert _assert_same(events) > 400


@pytest.mark.parametrize("hashes", [["", "", ""], ["a", "a", ""], ["a", "b", ""], ["", "b", "b"]])
def test_minutes_fold_hashes_and_bounds_as_before(hashes: list[str]) -> None:
    rows = [(i, 1_000 * MINUTE + (30 - i) * 1_000_000, "ip", "acct", "", "failure", h, "h", "k", f"r{i}", "")
            for i, h in enumerate(hashes)]
    rows.append((9, 1_001 * MINUTE, "ip", "acct", "", "failure", "z", "h", "k", "r9", ""))
    assert fold_minutes(rows) == previous_fold_minutes(rows)
    assert fold_minutes(rows)[0][5] == len(hashes)


def test_an_attempt_written_again_replaces_its_row_as_insert_or_replace_did(tmp_path: Path) -> None:
    """``sqlite_attempts._INSERT`` is an upsert now: a second row of one seq must leave what
    ``INSERT OR REPLACE`` left, in the table and in each of its indexes (real SQLite)."""
    previous = ("INSERT OR REPLACE INTO login_attempts (seq, time, ip, account, project, outcome, hash, "
                "host, kind, ref, agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    first = [(seq, seq * MINUTE, f"ip{seq % 3}", f"a{seq % 2}", "", "failure", "", "h", "cadf", f"r{seq}", "")
             for seq in range(1, 50)]
    again = [(seq, seq * MINUTE + 5, "ip9", "b", "p", "success", "x", "h2", "oslo_log", f"s{seq}", "ua")
             for seq in range(10, 60, 3)]
    tables = []
    for name, insert in (("old", previous), ("new", sqlite_attempts._INSERT)):
        conn = sqlite3.connect(tmp_path / f"{name}.db", isolation_level=None)
        sqlite_attempts.create(conn)
        conn.executemany(insert, first)
        conn.executemany(insert, again)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables.append([
            conn.execute("SELECT * FROM login_attempts ORDER BY seq").fetchall(),
            conn.execute("SELECT ip, time, seq FROM login_attempts INDEXED BY login_attempts_ip "
                         "WHERE ip > '' ORDER BY ip, time").fetchall(),
            conn.execute("SELECT account, time, seq FROM login_attempts INDEXED BY login_attempts_account "
                         "WHERE account > '' ORDER BY account, time").fetchall(),
            conn.execute("SELECT time, seq FROM login_attempts INDEXED BY login_attempts_time "
                         "WHERE time > 0 ORDER BY time").fetchall(),
        ])
        conn.close()
    assert tables[0] == tables[1]
    assert len(tables[1][0]) == 52 and tables[1][0][9][2] == "ip9"  # seq 10 replaced


def _tables(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
    return (conn.execute("SELECT * FROM login_attempts ORDER BY seq").fetchall(),
            conn.execute("SELECT * FROM attempt_minutes ORDER BY 1, 2, 3, 4, 5").fetchall())


@pytest.mark.parametrize("store_format", [2, 1])
def test_a_store_holds_the_attempts_the_previous_statements_make(
        tmp_path: Path, corpus: Path, store_format: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end over the CADF envelopes, the demo and the shared corpus: the tables the writer
    filled at ingest equal a recount of the stored events written with the previous insert
    (``INSERT OR REPLACE``) and the previous ``fold_minutes``; and ``store attempts`` agrees."""
    import contextlib
    import io
    import shutil

    from stackwatch.cli.analyze import run_analyze
    from stackwatch.store.sqlite import open_store

    logs = tmp_path / "logs"
    write_cadf(logs / "cadf" / "ctl1" / "notifications.json", 4_000, seed=7)
    demo_dataset(logs / "demo", seed=7)
    shutil.copytree(corpus, logs / "corpus")
    data = tmp_path / "data"
    monkeypatch.setenv("STACKWATCH_STORE_FORMAT", str(store_format))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run_analyze([str(logs)], data=str(data))
    store = open_store(str(data))
    try:
        assert store.format == store_format
        assert store.check_login_attempts() == []
    finally:
        store.close()
    conn = sqlite3.connect(data / "stackwatch.db", isolation_level=None)
    ingested = _tables(conn)
    assert len(ingested[0]) > 4_000  # the CADF logins and the demo's
    monkeypatch.setattr(sqlite_attempts, "_INSERT", "INSERT OR REPLACE INTO login_attempts (seq, time, ip, "
                        "account, project, outcome, hash, host, kind, ref, agent) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    monkeypatch.setattr(sqlite_attempts, "fold_minutes", previous_fold_minutes)
    conn.execute("BEGIN IMMEDIATE")
    sqlite_attempts.rebuild(conn)
    assert _tables(conn) == ingested
    conn.execute("ROLLBACK")
    conn.close()
