"""``analyze --jobs N``: files read and parsed in worker processes give exactly what one
process gives (alerts, stored events in the same seqs), a bad file or a dying worker costs
only that file, and the counters the summary prints are the same."""

from __future__ import annotations

import enum
import gzip
import os
import shutil
import signal
import sqlite3
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

from stackwatch.core.event import NO_INITIATOR, Event, Initiator, Target, to_json
from stackwatch.parsers.framing import FRAMING_COUNTERS
from stackwatch.pipeline.analyze import AnalyzeResult, analyze
from stackwatch.pipeline.engine import build_engine
from stackwatch.pipeline.ingested import IngestLedger
from stackwatch.pipeline.reader import InputFile, discover
from stackwatch.pipeline.workers import EVENT_FIELDS, ReaderPool, decode, encode, pack, unpack
from stackwatch.scenario import demo_dataset
from stackwatch.store import open_store
from stackwatch.store.base import EventQuery
from stackwatch.store.keys import init_store
from stackwatch.store.seal import Checkpoint
from stackwatch.store.sqlite import DB_FILE, INDEX_FILE

RECEIVED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # every run gets the same receive time


@dataclass
class Run:
    result: AnalyzeResult
    alerts: bytes  # the alerts' JSON
    events: list[bytes]  # the stored events' JSON, in seq order
    files: dict[str, tuple[int, int, int, int]]  # input -> events, unattributed, hostless, lines
    searches: list[tuple[str, int, list[int]]]  # query -> hits counted, the newest 100 hits' seqs
    integrity: tuple[object, ...]  # the blocks' digests and chain hashes, the checkpoints' sizes and roots


def run(paths: list[Path], data: Path, jobs: int, pool: ReaderPool | None = None,
        extra: list[InputFile] = (), **options) -> Run:
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(keyed_store(data.parent), data)  # the same keys: the same checkpoint roots
    inputs = discover([str(p) for p in paths]) + list(extra)
    # as the CLI does: with workers, the search index is filled by a process of its own
    store = open_store(str(data), **({"index_process": True} if jobs > 1 else {}))
    ledger = IngestLedger(data)
    try:
        result = analyze(inputs, engine=build_engine(report=None), store=store, jobs=jobs, pool=pool,
                         received=RECEIVED, stored_before=ledger.prepare(inputs), **options)
        ledger.record(inputs)
        last = store.counts().events
        stored = [event for start in range(1, last + 1, 10_000)
                  for event in store.get_events(list(range(start, min(start + 10_000, last + 1))))]
        searches = search_answers(store, [s.event for s in stored])
    finally:
        ledger.close()
        store.close()
    return Run(result, msgspec.json.encode(result.alerts), [to_json(s.event) for s in stored],
               {s.name: (s.events, s.unattributed, s.hostless, s.lines) for s in inputs}, searches,
               integrity(data))


def keyed_store(folder: Path) -> Path:
    """A store with signing and sealing keys (so it makes checkpoints), made once per folder
    and copied for each run."""
    template = folder / "keyed-template"
    if not template.exists():
        init_store(template, background_index=False, local_witness=False)
    return template


def search_answers(store: object, events: list[Event]) -> list[tuple[str, int, list[int]]]:
    """Searches through each structure of the search index (full text; IP, user and request-id
    keys): the most frequent values of the stored events, so any corpus has hits."""
    queries = [EventQuery(text=word) for word in ("failed", "session opened", "authentication")]
    for field, of in (("source_ip", lambda e: e.initiator.source_ip), ("user", lambda e: e.initiator.name),
                      ("request_id", lambda e: e.request_id)):
        common = Counter(value for value in map(of, events) if value).most_common(3)
        queries += [EventQuery(**{field: value}) for value, _ in common]
    answers = [(repr(q), store.count_events(q), [s.seq for s in store.search_events(q)])  # type: ignore[attr-defined]
               for q in queries]
    assert sum(count for _, count, _ in answers) > 0
    return answers


def integrity(data: Path) -> tuple[object, ...]:
    """What the closed store's chain and checkpoints say (format 2's blocks), and that its
    search index covers every record."""
    conn = sqlite3.connect(f"{(data / DB_FILE).as_uri()}?mode=ro", uri=True)
    index = sqlite3.connect(f"{(data / INDEX_FILE).as_uri()}?mode=ro", uri=True)
    try:
        blocks = conn.execute("SELECT id, first_seq, count, digests, chain FROM blocks "
                              "ORDER BY id").fetchall()
        checkpoints = [(cp.size, cp.root) for cp in (Checkpoint.from_bytes(body) for (body,) in
                       conn.execute("SELECT body FROM checkpoints ORDER BY epoch"))]
        last = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        indexed = index.execute("SELECT value FROM meta WHERE name = 'indexed_seq'").fetchone()[0]
    finally:
        conn.close()
        index.close()
    assert blocks and checkpoints and indexed == last
    return blocks, checkpoints, indexed


def summary(result: AnalyzeResult) -> tuple[object, ...]:
    progress = result.progress
    return (tuple(getattr(progress.stats, name) for name in FRAMING_COUNTERS),
            progress.read_bytes, progress.total_bytes, progress.inflated, progress.cut_lines,
            progress.cut_bytes, sorted(progress.stopped), result.stored, result.already_stored)


@pytest.fixture(scope="module")
def demo_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_dataset(tmp_path_factory.mktemp("demo") / "logs", seed=7)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmarks' mixed corpus (scenario generator), 30k lines."""
    from stackwatch.scenario import generate

    root = tmp_path_factory.mktemp("mixed") / "corpus"
    generate(root, seed=7, lines=30_000)
    return root


@pytest.fixture(scope="module")
def corpus() -> Path:
    path = Path(os.environ.get("STACKWATCH_CORPUS", Path(__file__).parents[3] / "shared" / "corpus"))
    assert path.is_dir(), f"the shared corpus is missing: {path}"
    return path


def test_the_wire_format_carries_every_field_of_an_event() -> None:
    assert Event.__struct_fields__ == EVENT_FIELDS  # pack/unpack name them one by one
    now = datetime.now(UTC)
    events = [
        Event(time=now, received=now, host="ctl1", service="keystone", severity="warning", message="m",
              kind="oslo_log", action="authenticate", outcome="failure",
              initiator=Initiator(name="admin", source_ip="10.0.0.1"), target=Target(type="user", id="u1"),
              observer="o", request_id="req-1", attrs={"pid": 3, "nested": {"a": [1, 2]}},
              raw="caf\udce9 undecodable", origin="file:/x", ref="x:1"),
        Event(time=now, received=now),
    ]
    back = unpack(pack(events))
    assert back == events
    assert back[1].initiator is NO_INITIATOR  # the shared default, not a copy


def _event(**fields: object) -> Event:
    now = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)
    return Event(**{"time": now, "received": now, **fields})


FULL = dict(host="ctl1", service="keystone", severity="warning", message="m", kind="oslo_log",
            action="authenticate", outcome="failure", initiator=Initiator(name="admin", source_ip="10.0.0.1"),
            target=Target(type="user", id="u1"), observer="o", request_id="req-1",
            attrs={"pid": 3, "ok": True, "load": 0.5, "none": None, "nested": {"a": [1, {"b": "c"}]}},
            raw="raw line", origin="file:/x", ref="x:1")


def test_a_batch_of_json_attrs_in_utc_crosses_as_msgpack() -> None:
    events = [_event(**FULL), _event()]
    payload = encode(events)
    assert isinstance(payload, bytes)
    back = decode(payload)
    assert repr(back) == repr(events)  # repr: a tuple for a list or another zone would show
    assert back[1].initiator is NO_INITIATOR


@pytest.mark.parametrize("odd", [
    {"raw": "caf\udce9 undecodable"},  # msgpack holds UTF-8 only
    {"time": datetime(2026, 12, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))},  # would come back in UTC
    {"received": datetime(2026, 12, 1, 12, 0)},  # naive
    {"attrs": {"pair": (1, 2)}},  # would come back a list
    {"attrs": {"deep": {"pair": (1, 2)}}},
    {"attrs": {"deep": [{"tags": {"a"}}]}},
    {"attrs": {1: "int key"}},
    {"attrs": {"deep": {2: "int key"}}},
    {"attrs": {"big": 2 ** 70}},  # past msgpack's 64 bits
    {"attrs": {"when": datetime(2026, 12, 1, tzinfo=UTC)}},
])
def test_a_batch_msgpack_would_change_crosses_as_pickled_tuples(odd: dict[str, object]) -> None:
    events = [_event(**FULL), _event(**{**FULL, **odd})]
    payload = encode(events)
    assert isinstance(payload, list)
    assert repr(decode(payload)) == repr(events)


def test_a_field_of_another_type_than_declared_crosses_as_the_parser_built_it() -> None:
    events = [_event(**{**FULL, "host": 5, "initiator": Initiator(name=7)}), _event(**FULL)]  # type: ignore[arg-type]
    payload = encode(events)
    assert isinstance(payload, bytes)
    assert repr(decode(payload)) == repr(events)


class _Severity(enum.StrEnum):
    WARNING = "warning"


@pytest.mark.parametrize("odd", [
    {"message": ("a", "b")},  # a plugin parser's tuple: msgpack gives a list back
    {"message": {"k": (1, 2)}},
    {"request_id": {"r"}},
    {"severity": _Severity.WARNING},  # would come back the plain str
    {"ref": datetime(2026, 12, 1, 12, 0)},  # naive: would come back aware
    {"initiator": Initiator(name=("a",))},  # type: ignore[arg-type]
    {"time": datetime(2026, 12, 1, 12, 0, tzinfo=timezone(timedelta(0), "UTC"))},  # == UTC, but not UTC
    {"attrs": defaultdict(list, {"a": [1]})},  # would come back a dict
])
def test_a_top_level_field_msgpack_would_change_crosses_as_pickled_tuples(odd: dict[str, object]) -> None:
    events = [_event(**FULL), _event(**{**FULL, **odd})]
    assert repr(decode(encode(events))) == repr(events)


@pytest.mark.parametrize("odd", [{"time": "2026-12-01T12:00:00Z"}, {"received": None}, {"attrs": None},
                                 {"attrs": ["a"]}])
def test_a_field_no_event_check_expects_does_not_stop_the_batch(odd: dict[str, object]) -> None:
    # pickled tuples carried these as the parser built them; the exactness check must not raise
    events = [_event(**FULL), _event(**{**FULL, **odd})]
    assert repr(decode(encode(events))) == repr(events)


@pytest.mark.parametrize("source", ["demo_logs", "mixed", "corpus"])
def test_alerts_and_stored_events_are_those_of_one_process(source: str, request: pytest.FixtureRequest,
                                                           tmp_path: Path) -> None:
    root: Path = request.getfixturevalue(source)
    one = run([root], tmp_path / "one", jobs=1)
    assert one.result.alerts and len(one.events) > 1000
    for jobs in (2, 4):
        many = run([root], tmp_path / f"jobs{jobs}", jobs=jobs)
        assert many.alerts == one.alerts, f"--jobs {jobs}: other alerts"
        assert many.events == one.events, f"--jobs {jobs}: other stored events or order"
        assert many.files == one.files
        assert many.searches == one.searches, f"--jobs {jobs}: other search answers"
        assert many.integrity == one.integrity, f"--jobs {jobs}: other digests, chain or checkpoints"
        assert summary(many.result) == summary(one.result)


def _index_processes() -> list[int]:
    """This process's children that are search indexer processes (store/index_process.py)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == os.getpid() and b"stackwatch.store.index_process" in command:
                found.append(int(entry.name))
    return found


def test_the_index_process_killed_mid_run_changes_nothing_stored(mixed: Path, tmp_path: Path) -> None:
    """SIGKILL of the search indexer process during ``--jobs 2``: the run goes on, its close
    indexes the rest, and records, chain, checkpoints and search answers are those of one process."""
    one = run([mixed], tmp_path / "one", jobs=1)
    killed: list[int] = []

    def kill_it(progress: object) -> None:
        if not killed:
            killed.extend(_index_processes())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    cut = run([mixed], tmp_path / "cut", jobs=2, on_progress=kill_it, progress_every=5000)
    assert len(killed) == 1
    assert (cut.alerts, cut.events, cut.searches, cut.integrity) == (one.alerts, one.events, one.searches,
                                                                      one.integrity)


def test_a_second_run_recognises_what_the_workers_stored(demo_logs: Path, tmp_path: Path) -> None:
    """The ingest ledger's fingerprints are computed in the workers and recorded by the parent."""
    data = tmp_path / "d"
    inputs = discover([str(demo_logs)])
    for jobs, fresh in ((2, True), (2, False)):
        store, ledger = open_store(str(data)), IngestLedger(data)
        try:
            result = analyze(inputs, engine=build_engine(report=None), store=store, jobs=jobs,
                             stored_before=ledger.prepare(inputs))
            ledger.record(inputs)
        finally:
            ledger.close()
            store.close()
        inputs = discover([str(demo_logs)])
        if fresh:
            first = result.stored
            assert first > 0 and result.already_stored == 0
        else:
            assert result.stored == 0 and result.already_stored == first


def test_a_bad_file_ends_alone_with_a_clear_error(demo_logs: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(demo_logs, logs)
    good = run([logs], tmp_path / "good", jobs=1)
    host = next(p for p in sorted(logs.iterdir()) if p.is_dir())
    text = b"".join(f"Dec  1 10:00:{n % 60:02d} {host.name} sshd[1]: Accepted publickey for a{n} from "
                    f"10.9.0.{n % 200} port 22\n".encode() for n in range(20_000))
    packed = gzip.compress(text)
    (host / "broken.log.gz").write_bytes(packed[: len(packed) // 2] + b"\0" * 64 + packed[-8:])
    outcomes = {}
    for jobs in (1, 2):
        bad = run([logs], tmp_path / f"bad{jobs}", jobs=jobs)
        [message] = bad.result.progress.stopped
        assert "broken.log.gz" in message and "the rest of the file was not read" in message
        others = {name: counts for name, counts in bad.files.items() if "broken" not in name}
        assert others == good.files  # every other file read to its end
        assert set(good.events) <= set(bad.events)  # nothing of theirs lost
        outcomes[jobs] = (bad.alerts, bad.events, message)
    assert outcomes[1] == outcomes[2]


def test_a_worker_killed_mid_run_costs_at_most_the_file_it_was_reading(demo_logs: Path,
                                                                       tmp_path: Path) -> None:
    whole = run([demo_logs], tmp_path / "whole", jobs=1)
    pool = ReaderPool(2)
    killed: list[int] = []

    def kill_once(progress: object) -> None:
        if not killed:
            victim = pool.workers[0].process
            killed.append(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)

    try:
        cut = run([demo_logs], tmp_path / "cut", jobs=2, pool=pool, on_progress=kill_once,
                  progress_every=2000)
    finally:
        pool.close()
    assert killed and pool.deaths == 1
    lost = [message for message in cut.result.progress.stopped if "worker process reading it died" in message]
    assert len(lost) == len(cut.result.progress.stopped) <= 1
    assert all("killed by signal 9" in message for message in lost)
    for name, counts in whole.files.items():
        if not any(message.startswith(f"{name}:") for message in lost):
            assert cut.files[name] == counts, f"{name} lost events"
    if not lost:  # it died between two batches: every file was read on by its replacement
        assert cut.events == whole.events and cut.alerts == whole.alerts
    else:
        assert set(cut.events) <= set(whole.events)


def test_a_worker_dying_on_a_file_costs_that_file_only(demo_logs: Path, tmp_path: Path) -> None:
    """A FIFO nobody writes holds its worker in open(): killed there, the worker names it."""
    whole = run([demo_logs], tmp_path / "whole", jobs=1)
    fifo = tmp_path / "stuck.log"
    os.mkfifo(fifo)
    pool = ReaderPool(2)

    done = threading.Event()

    def kill_its_reader() -> None:
        while not done.wait(0.2):
            entry = next((entry for entry in list(pool.files.values()) if entry.source.path == fifo), None)
            if entry is not None and pool.current[entry.worker.slot] == entry.index:  # in open()
                os.kill(entry.worker.process.pid, signal.SIGKILL)
                return

    killer = threading.Thread(target=kill_its_reader)
    killer.start()
    try:
        cut = run([demo_logs], tmp_path / "cut", jobs=2, pool=pool,
                  extra=[InputFile(fifo, ref_prefix="stuck")])
    finally:
        done.set()
        killer.join()
        pool.close()
    assert pool.deaths == 1
    assert cut.result.progress.stopped == [
        f"{fifo}: the worker process reading it died (killed by signal 9) after 0 events; "
        "the rest of the file was not read"]
    del cut.files[str(fifo)]
    assert cut.files == whole.files  # the dead worker's other files were read again, whole
    assert cut.events == whole.events and cut.alerts == whole.alerts


def test_workers_started_by_a_forkserver_give_the_same(demo_logs: Path, tmp_path: Path) -> None:
    """A process that already has threads (an open store) starts its workers from a forkserver."""
    one = run([demo_logs], tmp_path / "one", jobs=1)
    with ReaderPool(2, start_method="forkserver") as pool:
        many = run([demo_logs], tmp_path / "many", jobs=2, pool=pool)
    assert (many.alerts, many.events, many.files) == (one.alerts, one.events, one.files)
