"""Reading files in worker processes (``stackwatch analyze --jobs N``).

A file is the unit of work: each file is read, decoded and parsed by one worker process,
through the same entry point the one-process path uses (``reader.guarded_batches``), so
whatever makes parsing faster makes the workers faster. Detection and the store stay in the
parent (one writer): the parent merges the files' event lists in event-time order exactly as
it merges them when it reads them itself, so the engine and the store see the same events
in the same order (the alerts and the stored seqs are identical to ``--jobs 1``).

Flow control: the parent asks for a file's batches one at a time, at most ``ahead`` of them
before the merge took them (``ahead`` shrinks as files grow many, so the batches in flight
stay bounded: memory is a few batches per open file, as in one process). A worker serves
the requests in the order they came, the merge's order of need; a thread of its own writes
its answers, so it goes on parsing while the parent is busy detecting.

Failures: an error reading a file (a corrupt .gz, a parser raising) ends that file with a
message in ``progress.stopped``, as in one process; the worker goes on with its other files.
A worker process that dies (killed, a crash in a compiled extension) costs only the file it
was reading when it died (named in ``progress.stopped``): its other files are read again by
a fresh worker, which skips the events the parent already has. Workers ignore SIGINT and
SIGTERM: the parent's handler stops the run and then closes the pool, so the store is
sealed with every event the merge handed over.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import multiprocessing as mp
import multiprocessing.connection
import operator
import os
import pickle
import queue
import signal
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import msgspec

from stackwatch.core.event import NO_INITIATOR, NO_TARGET, Event, Initiator, Target
from stackwatch.parsers.framing import FRAMING_COUNTERS
from stackwatch.pipeline.reader import InflateLimits, InputFile, ReadProgress, guarded_batches

AHEAD_BUDGET = 32
"""Batches asked for ahead of the merge, over all files (a batch: up to 512 lines' events)."""
MAX_AHEAD = 4
"""Batches asked for ahead of the merge per file, when there are few files."""

MAX_DEATHS = 2
"""Workers a file may see die before it is given up (when the death named no file)."""

_STATS = FRAMING_COUNTERS
_IDLE = -1


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What every file of a run is read with (the same in every worker)."""

    received: datetime
    block_size: int
    inflate: InflateLimits | None


# ---------------------------------------------------------------------------- events on the wire

EVENT_FIELDS = ("time", "received", "host", "service", "severity", "message", "kind", "action", "outcome",
                "initiator", "target", "observer", "request_id", "attrs", "raw", "origin", "ref")
"""Event's fields in the order ``pack`` writes them (a test holds it to ``Event``'s own)."""

_astuple = msgspec.structs.astuple
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Event])
_LOOSE = msgspec.msgpack.Decoder()

Wire = bytes | list[tuple[Any, ...]]
"""A batch of events as a worker sends it: msgpack (``encode``), else ``pack``'s tuples."""


def encode(events: list[Event]) -> Wire:
    """A batch for the parent: msgpack when it gives back exactly these events (msgspec
    writes and the parent rebuilds the Structs in C: 0.7 + 2.3 µs an event against pickled
    tuples' 3.5 + 3.6, benchmarks/README "analyze --jobs N"), else ``pack``'s tuples, which
    pickle keeps exact whatever they hold."""
    if _msgpack_exact(events):
        try:
            return _ENCODER.encode(events)
        except (UnicodeEncodeError, OverflowError, TypeError, msgspec.EncodeError):
            pass  # a lone surrogate (undecodable bytes), an int past 64 bits, an odd type
    return pack(events)


def decode(payload: Wire) -> list[Event]:
    """The events ``encode`` wrote."""
    if type(payload) is not bytes:
        return unpack(payload)  # type: ignore[arg-type]
    try:
        return _DECODER.decode(payload)
    except msgspec.ValidationError:
        # a field holding another type than Event declares (a parser's bug, a plugin's): as
        # in one process, the event goes on as the parser built it
        return [_loose_event(fields) for fields in _LOOSE.decode(payload)]


def _loose_event(fields: dict[str, Any]) -> Event:
    initiator, target = fields.get("initiator"), fields.get("target")
    if initiator is not None:
        fields["initiator"] = Initiator(**initiator)
    if target is not None:
        fields["target"] = Target(**target)
    return Event(**fields)


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
_JSON_TYPES = _JSON_SCALARS | {dict, list}
_is_container = frozenset({dict, list}).__contains__
_attrs = operator.attrgetter("attrs")
_zones = operator.attrgetter("time.tzinfo", "received.tzinfo")
_ALWAYS_UTC = itertools.repeat(UTC)
_STR = {str}
_DICT = {dict}
_scalars = operator.attrgetter("host", "service", "severity", "message", "kind", "action", "outcome",
                               "observer", "request_id", "raw", "origin", "ref")
_initiator = operator.attrgetter("initiator")
_target = operator.attrgetter("target")
_INITIATORS = {Initiator, type(None)}
_TARGETS = {Target, type(None)}


def _msgpack_exact(events: list[Event]) -> bool:
    """Would msgpack give these events back as they are? Not when a time is not in UTC (it
    comes back in UTC: equal, but printed otherwise; a zone equal to UTC but not ``UTC``
    itself too), a field holds other than a JSON scalar (a tuple, a set, an enum, a
    datetime come back otherwise; an initiator or target other than its own Struct), or
    attrs hold other than JSON values under str keys (a tuple comes back a list). Nor when
    a field holds what this check cannot look into (a str time, None attrs): pickled tuples
    carry those as they are. Checked a batch at a time, in C but for nested attrs."""
    try:
        if not all(map(operator.is_, itertools.chain.from_iterable(map(_zones, events)), _ALWAYS_UTC)):
            return False
        if not set(map(type, itertools.chain.from_iterable(map(_scalars, events)))) <= _JSON_SCALARS:
            return False
        initiators, targets = list(map(_initiator, events)), list(map(_target, events))
        if not (set(map(type, initiators)) <= _INITIATORS and set(map(type, targets)) <= _TARGETS):
            return False
        # each distinct one once (most events share the defaults)
        parties = dict(zip(map(id, initiators), initiators, strict=True))
        parties.update(zip(map(id, targets), targets, strict=True))
        parties.pop(id(None), None)
        party_values = itertools.chain.from_iterable(map(_astuple, parties.values()))
        if not set(map(type, party_values)) <= _JSON_SCALARS:
            return False
        attrs = list(map(_attrs, events))
        if not set(map(type, attrs)) <= _DICT:  # a defaultdict, an OrderedDict would come back a dict
            return False
        if not set(map(type, itertools.chain.from_iterable(attrs))) <= _STR:
            return False
        values = list(itertools.chain.from_iterable(map(dict.values, attrs)))
    except (AttributeError, TypeError):
        return False
    kinds = list(map(type, values))
    found = set(kinds)
    if found <= _JSON_SCALARS:
        return True
    nested = itertools.compress(values, map(_is_container, kinds))
    return found <= _JSON_TYPES and all(map(_json_value, nested))


def _json_value(value: Any) -> bool:
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if kind is dict:
        return all(type(key) is str for key in value) and all(map(_json_value, value.values()))
    return kind is list and all(map(_json_value, value))


def pack(events: list[Event]) -> list[tuple[Any, ...]]:
    """Events as plain tuples for pickling (the fallback of ``encode``): unpickling a msgspec
    Struct calls back into Python once per object with a dict of its fields; plain tuples
    and one constructor call per event took half the parent's time per event."""
    rows = []
    for event in events:
        row = _astuple(event)
        initiator, target = row[9], row[10]
        rows.append((*row[:9], None if initiator is NO_INITIATOR else _astuple(initiator),
                     None if target is NO_TARGET else _astuple(target), *row[11:]))
    return rows


def unpack(rows: list[tuple[Any, ...]]) -> list[Event]:
    """The events ``pack`` wrote."""
    out: list[Event] = []
    append = out.append
    for (time, received, host, service, severity, message, kind, action, outcome, initiator, target,
         observer, request_id, attrs, raw, origin, ref) in rows:
        append(Event(time=time, received=received, host=host, service=service, severity=severity,
                     message=message, kind=kind, action=action, outcome=outcome,
                     initiator=NO_INITIATOR if initiator is None else Initiator(*initiator),
                     target=NO_TARGET if target is None else Target(*target), observer=observer,
                     request_id=request_id, attrs=attrs, raw=raw, origin=origin, ref=ref))
    return out


# ---------------------------------------------------------------------------- worker side

def _snapshot(progress: ReadProgress, source: InputFile) -> tuple[Any, ...]:
    """A file's cumulative counters: the parent applies what changed since the last one."""
    stats = progress.stats
    return (progress.read_bytes, progress.inflated, progress.cut_lines, progress.cut_bytes,
            tuple(getattr(stats, name) for name in _STATS), tuple(progress.stopped),
            source.events, source.unattributed, source.hostless)


class _Reading:
    """One file open in a worker."""

    def __init__(self, index: int, source: InputFile, skip: int, options: ReadOptions) -> None:
        self.index = index
        self.source = source
        self.skip = skip  # events a worker that died had already handed over
        if source.fingerprint is True:
            source.fingerprint = hashlib.sha256()
        self.progress = ReadProgress()
        self.batches = guarded_batches(source, self.progress, options.received, options.block_size,
                                       options.inflate)

    def next_message(self) -> tuple[Any, ...]:
        """("batch", index, events (``encode``), counters, count) or, once the file is done, ("end", index,
        counters, lines, text_bytes, digest)."""
        for events in self.batches:
            if self.skip:
                if len(events) <= self.skip:
                    self.skip -= len(events)
                    continue
                events, self.skip = events[self.skip:], 0
            return ("batch", self.index, encode(events), _snapshot(self.progress, self.source), len(events))
        source = self.source
        digest = source.fingerprint.digest() if source.fingerprint is not None else None
        return ("end", self.index, _snapshot(self.progress, source), source.lines, source.text_bytes, digest)


class _Sender:
    """Writes a worker's answers from a thread of its own: the worker parses on while the
    parent, busy detecting, has not read the previous answer yet."""

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self.conn = conn
        self.queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="stackwatch-reader-send", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (blob := self.queue.get()) is not None:
            try:
                self.conn.send_bytes(blob)
            except OSError:  # the parent is gone: nothing left to do
                return

    def put(self, message: tuple[Any, ...]) -> None:
        self.queue.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        """Stop without waiting: by "stop" the parent has every answer it wants, and one it no
        longer reads would hold a writer blocked on a full pipe (the thread is a daemon)."""
        self.queue.put(None)


def _die_with_parent() -> None:
    """Linux: be killed when the parent dies, even while blocked in a read (a worker left
    behind would hold its files open and its pipe's writers for ever)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _work(requests: multiprocessing.connection.Connection, results: multiprocessing.connection.Connection,
          current: Any, slot: int, options: ReadOptions) -> None:
    """A worker's loop: open files, answer "more" requests in order, until "stop" or EOF."""
    for signum in (signal.SIGINT, signal.SIGTERM):  # the parent decides when to stop
        signal.signal(signum, signal.SIG_IGN)
    _die_with_parent()
    gc.set_threshold(50_000, 20, 100)  # as detect.gc_tuning: parsing allocates much, cycles rarely
    sender = _Sender(results)
    files: dict[int, _Reading] = {}
    todo: deque[int] = deque()
    parent = mp.parent_process()
    watch: list[Any] = [requests] if parent is None else [requests, parent.sentinel]
    try:
        while True:
            if not todo:
                multiprocessing.connection.wait(watch)
            while requests.poll():
                request = requests.recv()
                if request[0] == "stop":
                    return
                if request[0] == "open":
                    _, index, source, skip, ahead = request
                    files[index] = _Reading(index, source, skip, options)
                    todo.extend([index] * ahead)
                else:  # ("more", index)
                    todo.append(request[1])
            if not todo:
                if parent is not None and not parent.is_alive():
                    return
                continue
            index = todo.popleft()
            reading = files.get(index)
            if reading is None:  # asked for more after its end was sent
                continue
            current[slot] = index
            message = reading.next_message()
            current[slot] = _IDLE
            if message[0] == "end":
                del files[index]
            sender.put(message)
    except (EOFError, OSError):  # the parent is gone
        return
    finally:
        sender.close()


# ---------------------------------------------------------------------------- parent side

class _Worker:
    """A worker process and the parent's ends of its two pipes."""

    def __init__(self, context: Any, slot: int, current: Any, options: ReadOptions) -> None:
        self.slot = slot
        requests_r, self.requests = context.Pipe(duplex=False)
        self.results, results_w = context.Pipe(duplex=False)
        self.process = context.Process(target=_work, args=(requests_r, results_w, current, slot, options),
                                       name=f"stackwatch-reader-{slot}", daemon=True)
        _widen(self.results)
        self.process.start()
        requests_r.close()  # the worker's ends: a worker forked later must not hold them
        results_w.close()
        self.files: set[int] = set()
        self.alive = True

    def send(self, request: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):  # a dead worker is noticed by its sentinel
            self.requests.send(request)


PIPE_BYTES = 1 << 20
"""A results pipe's capacity (Linux: F_SETPIPE_SZ; 1 MiB is the unprivileged maximum): a
batch's answer fits whole, so a worker's writer never waits for the parent to read it piece
by piece (64 KiB pipes made the parent spend a fifth of its time in read(): a round trip per
64 KiB)."""


def _widen(conn: multiprocessing.connection.Connection) -> None:
    with contextlib.suppress(OSError, AttributeError):
        import fcntl

        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[attr-defined]


@dataclass(slots=True)
class _File:
    index: int
    source: InputFile
    worker: _Worker
    inbox: deque[tuple[Any, ...]] = field(default_factory=deque)
    received: int = 0  # events received from workers (the merge has them or will)
    applied: tuple[Any, ...] | None = None  # the counters last applied to the shared progress
    done: bool = False
    deaths: int = 0  # workers that died while this file was open on them


class ReaderPool:
    """``jobs`` worker processes reading files for one ``analyze`` run.

    Start it before the process has threads when it can (``fork`` then; otherwise
    ``forkserver``), e.g. before opening the store; ``read(...)`` gives one stream per file
    for the merge; ``close()`` (or ``with``) stops the workers."""

    def __init__(self, jobs: int, *, start_method: str | None = None) -> None:
        if start_method is None:
            start_method = "fork" if threading.active_count() == 1 else "forkserver"
        self.context = mp.get_context(start_method)
        self.jobs = max(1, jobs)
        self.current = self.context.RawArray("i", [_IDLE] * self.jobs)
        self.workers: list[_Worker] = []
        self.files: dict[int, _File] = {}
        self.progress: ReadProgress | None = None
        self.options: ReadOptions | None = None
        self.ahead = 1
        self.deaths = 0  # worker processes that died during the run

    def __enter__(self) -> ReaderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, options: ReadOptions) -> None:
        self.options = options
        self.workers = [_Worker(self.context, slot, self.current, options) for slot in range(self.jobs)]

    def streams(self, inputs: list[InputFile], progress: ReadProgress, options: ReadOptions
                ) -> list[Iterator[list[Event]]]:
        """One stream of event lists per input, read by the workers (stdin is not theirs: the
        caller reads it)."""
        if not self.workers:
            self.start(options)
        self.progress = progress
        files = [source for source in inputs if source.path is not None]
        self.ahead = max(1, min(MAX_AHEAD, AHEAD_BUDGET // max(1, len(files))))
        load = [0] * len(self.workers)
        streams = []
        # the largest files first, each to the least loaded worker
        order = sorted(range(len(inputs)), key=lambda i: -inputs[i].size)
        owners: dict[int, _Worker] = {}
        for index in order:
            if inputs[index].path is None:
                continue
            slot = min(range(len(load)), key=load.__getitem__)
            load[slot] += max(1, inputs[index].size)
            owners[index] = self.workers[slot]
        for index, source in enumerate(inputs):
            if source.path is None:
                continue
            self.files[index] = _File(index, source, owners[index])
            self._open(self.files[index])
            streams.append(self._stream(index))
        return streams

    def _open(self, entry: _File) -> None:
        source = entry.source
        # a hash object does not pickle: True asks the worker to start one (see _Reading)
        # counted from zero: a replacement worker reads the file again from its start
        shipped = replace(source, fingerprint=True if source.fingerprint is not None else None,
                          events=0, unattributed=0, hostless=0, text_bytes=0, lines=0)
        entry.worker.files.add(entry.index)
        entry.worker.send(("open", entry.index, shipped, entry.received, self.ahead))

    def _stream(self, index: int) -> Iterator[list[Event]]:
        entry = self.files[index]
        while True:
            while not entry.inbox:
                self._receive()
            message = entry.inbox.popleft()
            self._apply(entry, message)
            kind = message[0]
            if kind == "batch":
                if not entry.done:
                    entry.worker.send(("more", index))
                yield decode(message[2])
            else:
                return

    def _apply(self, entry: _File, message: tuple[Any, ...]) -> None:
        """Move the file's counters in the shared progress and its InputFile to where the
        worker had them after this message (what one process would show at this point)."""
        kind = message[0]
        if kind == "died":
            assert self.progress is not None
            self.progress.stopped.append(message[2])
            return
        counters = message[3] if kind == "batch" else message[2]
        before = entry.applied
        entry.applied = counters
        progress = self.progress
        assert progress is not None
        read_bytes, inflated, cut_lines, cut_bytes, stats, stopped, events, unattributed, hostless = counters
        if before is None:
            before = (0, 0, 0, 0, (0,) * len(_STATS), (), 0, 0, 0)
        progress.read_bytes += read_bytes - before[0]
        progress.inflated += inflated - before[1]
        progress.cut_lines += cut_lines - before[2]
        progress.cut_bytes += cut_bytes - before[3]
        for name, now, then in zip(_STATS, stats, before[4], strict=True):
            if now != then:
                setattr(progress.stats, name, getattr(progress.stats, name) + now - then)
        progress.stopped.extend(stopped[len(before[5]):])
        source = entry.source
        source.events, source.unattributed, source.hostless = events, unattributed, hostless
        if kind == "end":
            _, _, _, source.lines, source.text_bytes, digest = message
            if digest is not None:
                source.fingerprint = _Digest(digest)

    def _receive(self) -> None:
        """Wait for the next answer of any worker and put it in its file's inbox."""
        live = [worker for worker in self.workers if worker.alive]
        # each worker's two handles: its results pipe (True) and its process's sentinel (False)
        waiting: dict[Any, tuple[_Worker, bool]] = {worker.results: (worker, True) for worker in live}
        waiting.update({worker.process.sentinel: (worker, False) for worker in live})
        for ready in multiprocessing.connection.wait(list(waiting)):
            worker, answered = waiting[ready]
            if not worker.alive:
                continue
            if answered:
                try:
                    # our own child over a private pipe, never outside input
                    message = pickle.loads(worker.results.recv_bytes())  # noqa: S301
                except (EOFError, OSError):
                    self._died(worker)
                    continue
                self._deliver(message)
            elif not worker.results.poll():  # exited, and nothing of it is left unread
                self._died(worker)

    def _deliver(self, message: tuple[Any, ...]) -> None:
        entry = self.files[message[1]]
        if message[0] == "batch":
            entry.received += message[4]
        else:
            entry.done = True
            entry.worker.files.discard(entry.index)
        entry.inbox.append(message)

    def _died(self, worker: _Worker) -> None:
        """A worker process ended unasked: the file it was reading ends there (named in the
        summary); its other files go to a fresh worker, which skips what was received."""
        worker.alive = False
        worker.process.join(5)
        self.deaths += 1
        code = worker.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        culprit = self.current[worker.slot]
        self.current[worker.slot] = _IDLE
        orphans = sorted(worker.files)
        worker.files.clear()
        with contextlib.suppress(OSError):
            worker.requests.close()
            worker.results.close()
        assert self.options is not None
        replacement = _Worker(self.context, worker.slot, self.current, self.options)
        self.workers[worker.slot] = replacement
        for index in orphans:
            entry = self.files[index]
            entry.deaths += 1
            # a worker dying between two batches names no file: each of its files gets one more try
            if index == culprit or len(orphans) == 1 or entry.deaths >= MAX_DEATHS:
                entry.done = True
                entry.inbox.append(("died", index,
                                    f"{entry.source.name}: the worker process reading it died ({how}) "
                                    f"after {entry.received:,} events; the rest of the file was not read"))
                continue
            entry.worker = replacement
            self._open(entry)

    def close(self) -> None:
        """Stop the workers (they are daemons: an exiting parent takes them down too)."""
        for worker in self.workers:
            if worker.alive:
                worker.send(("stop",))
        for worker in self.workers:
            worker.process.join(2)
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
            with contextlib.suppress(OSError):
                worker.requests.close()
                worker.results.close()
        self.workers = []


class _Digest:
    """A file's fingerprint as a worker computed it (what ``IngestLedger.record`` reads)."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def digest(self) -> bytes:
        return self.value
