"""Reading archives: files (plain or .gz), folders recursively, or stdin, into one stream
of events in event-time order across files, so windowed detection works on archives.

Host hints come from where a file sits, the way central log servers lay them out
(rsyslog's ``/var/log/remote/%HOSTNAME%/<file>``): ``<root>/<host>/<file>``, only when a
folder is given as the root; a file named on its own takes its host from its records (or
``--host``), never from its parent folder. A record that names its host (syslog HOSTNAME, a
notification's publisher_id) wins.

The service comes from the record whenever it says it (an oslo.log logger, a syslog tag, a
notification's publisher); the file name is the fallback, read for a known service name in
it (``wsgi-keystone.log``, ``ctl2-keystone.log.gz`` -> keystone). Each input counts the
events it could give no known service and no host, for the closing summary.
"""

from __future__ import annotations

import bisect
import gzip
import heapq
import logging
import operator
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, compress, count, islice
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from stackwatch.core.event import Event
from stackwatch.parsers.base import ParseContext, RecordGate
from stackwatch.parsers.framing import Framer, FramingStats
from stackwatch.parsers.service_hints import known_services, service_hint
from stackwatch.sources.base import mark_truncated

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4 * 1024 * 1024
"""A longer line keeps its first MAX_LINE_BYTES as its record (flagged ``truncated`` with its
``original_bytes``); the rest is read past, counted, not held: one line of gigabytes (a gzip
bomb without a newline) costs a block of memory, not its size."""

@dataclass(slots=True)
class InputFile:
    path: Path | None  # None for stdin
    host: str = ""
    service: str = ""
    ref_prefix: str = ""
    size: int = 0
    year: int | None = None
    events: int = 0  # read so far
    unattributed: int = 0  # events given no known service (neither by the record nor the name)
    hostless: int = 0  # events with no host (the record names none, no layout, no --host)
    # Set by ingested.IngestLedger before reading: the text read is hashed (what an earlier
    # run stored is recognised by it); text_bytes and lines are how much was read.
    fingerprint: Any = None
    text_bytes: int = 0
    lines: int = 0

    @property
    def name(self) -> str:
        """How the summary names this input."""
        return str(self.path) if self.path is not None else "stdin"

    @property
    def origin(self) -> str:
        return f"file:{self.path}" if self.path is not None else "stdin"


DEFAULT_MAX_INFLATE_RATIO = 500.0


@dataclass(frozen=True, slots=True)
class InflateLimits:
    """How far a compressed file may expand before reading it stops (what was read is kept).

    ``max_ratio`` applies once ``RATIO_FLOOR`` bytes came out, so a small file that compresses
    very well is never stopped; 0 turns either limit off. Logs of one line repeated reach ~300x;
    a deflate bomb ~1000x."""

    max_ratio: float = DEFAULT_MAX_INFLATE_RATIO
    max_bytes: int = 0

    RATIO_FLOOR = 64 << 20


@dataclass(slots=True)
class ReadProgress:
    """Shared counters for a progress display: bytes consumed of the total, and what reading
    left out: over-long lines cut (and the bytes read past) and files not read to the end."""

    total_bytes: int = 0  # of the files on disk (a .gz file's compressed size)
    read_bytes: int = 0  # text read (a .gz file's decompressed bytes)
    stats: FramingStats = field(default_factory=FramingStats)
    cut_lines: int = 0
    cut_bytes: int = 0
    stopped: list[str] = field(default_factory=list)  # one message per file not read to the end
    inflated: int = 0  # text read out of .gz files beyond the compressed bytes it came from

    @property
    def file_bytes(self) -> int:
        """Bytes of the files consumed, as ``total_bytes`` counts them: the share done."""
        return self.read_bytes - self.inflated


def discover(paths: Iterable[str], host: str = "") -> list[InputFile]:
    """Expand the command line's paths into input files with host/service hints."""
    inputs: list[InputFile] = []
    for text in paths:
        if text == "-":
            inputs.append(InputFile(None, host=host, ref_prefix="stdin"))
            continue
        root = Path(text)
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                if path.name.startswith(".") or path.name == "manifest.json":
                    continue
                relative = path.relative_to(root)
                layout_host = relative.parts[0] if len(relative.parts) >= 2 else ""
                inputs.append(_input(path, host or layout_host, str(relative)))
        elif root.is_file():  # its folder is no host: /tmp/x/ks.log is not from host 'x'
            inputs.append(_input(root, host, root.name))
        else:
            raise FileNotFoundError(f"no such file or folder: {text}")
    return inputs


def _input(path: Path, host: str, ref: str) -> InputFile:
    stat = path.stat()
    year = datetime.fromtimestamp(stat.st_mtime, UTC).year
    prefix = f"{host}/{ref}" if host and not ref.startswith(f"{host}/") else ref
    return InputFile(path, host=host, service=service_hint(path.name), ref_prefix=prefix,
                     size=stat.st_size, year=year)


class ByteSource(Protocol):
    """What the reader reads a file through: the file, stdin, or a decompressing handle over the
    file (``read1``, where there is one, is preferred: see read_line_batches)."""

    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


def open_input(source: InputFile, inflate: InflateLimits | None = None,
               progress: ReadProgress | None = None) -> ByteSource:
    """A file's bytes, decompressed when it is gzip (within ``inflate``); stdin as it is."""
    if source.path is None:
        return sys.stdin.buffer
    handle = source.path.open("rb")
    if handle.read(2) == b"\x1f\x8b":
        handle.seek(0)
        inflated = gzip.GzipFile(fileobj=handle, mode="rb")
        if inflate is None or not (inflate.max_ratio or inflate.max_bytes):
            return _Closing(inflated, handle)
        return _LimitedInflate(inflated, handle, inflate, str(source.path), progress)
    handle.seek(0)
    return handle


class _Closing:
    """A GzipFile over a file we opened: closing it closes both (GzipFile leaves ``fileobj`` open)."""

    def __init__(self, inflated: gzip.GzipFile, raw: BinaryIO) -> None:
        self.inflated, self.raw = inflated, raw
        self.read: Callable[[int], bytes] = inflated.read
        self.read1: Callable[[int], bytes] = inflated.read1

    def close(self) -> None:
        self.inflated.close()
        self.raw.close()


class _LimitedInflate(_Closing):
    """A .gz read that ends (as if at end of file) once it expanded past ``limits``; what came
    out until then is read as usual, and ``progress.stopped`` says why the rest was not."""

    def __init__(self, inflated: gzip.GzipFile, raw: BinaryIO, limits: InflateLimits, name: str,
                 progress: ReadProgress | None) -> None:
        super().__init__(inflated, raw)
        self.limits, self.name, self.progress = limits, name, progress
        self.out = 0
        self.read = self.read1 = self._read

    def _read(self, size: int = -1) -> bytes:
        if self.out < 0:
            return b""
        block = self.inflated.read1(size)
        self.out += len(block)
        limits, compressed = self.limits, max(1, self.raw.tell())
        if limits.max_bytes and self.out > limits.max_bytes:
            block = block[: len(block) - (self.out - limits.max_bytes)]
            self.out = limits.max_bytes
            self._stop(f"more than --max-inflated-size {limits.max_bytes} bytes")
        elif limits.max_ratio and self.out >= limits.RATIO_FLOOR and self.out / compressed > limits.max_ratio:
            self._stop(f"{self.out / compressed:.0f}x its compressed size (--max-inflate-ratio "
                       f"{limits.max_ratio:g})")
        return block

    def _stop(self, why: str) -> None:
        message = (f"{self.name}: stopped after {self.out:,} bytes decompressed from "
                   f"{self.raw.tell():,} compressed: {why}; the rest of the file was not read")
        self.out = -1
        if self.progress is not None:
            self.progress.stopped.append(message)
        else:  # nobody collects it: never stop in silence
            log.warning("%s", message)


READ_BLOCK = 1 << 20
"""Bytes read at a time: whole blocks are decoded and split at once (one C call each instead
of a readline + decode + rstrip per line: the read stage is ~3x faster)."""

READ_BUDGET = 4 << 20
"""Read buffers of all the files merged at once: each open file holds its block's text and
lines while the others are read, so with many files the block shrinks to keep the total
bounded (45 files at 1 MiB each held ~170 MB; an archive of 500 hosts would hold GBs). Half
of the 8 MiB it was when the text was not held: the same memory (see read_line_batches)."""

MIN_READ_BLOCK = 64 << 10


BATCH_LINES = 512
"""Lines framed at a time per file. Parsing a batch of one file before moving on keeps the
parsers' one-record caches warm while the time-ordered merge interleaves files; memory
stays bounded (a batch of events per open file)."""


def read_lines(handle: ByteSource, progress: ReadProgress | None = None) -> Iterator[str]:
    """Decoded lines without their newline; undecodable bytes kept via surrogateescape.

    Same lines as ``readline(MAX_LINE_BYTES)`` in a loop would give: a line longer than
    MAX_LINE_BYTES comes out in MAX_LINE_BYTES pieces, and memory stays bounded by it."""
    for batch in read_line_batches(handle, progress):
        yield from batch


class CutLine(list[str]):
    """A batch of one over-long line's first MAX_LINE_BYTES; ``original_bytes``: its whole length."""

    original_bytes: int = 0


def read_line_batches(handle: ByteSource, progress: ReadProgress | None = None,
                      size: int = BATCH_LINES, block_size: int = READ_BLOCK) -> Iterator[list[str]]:
    """``read_lines`` in lists of at most ``size`` lines, reading ``block_size`` bytes at a time.
    An over-long line comes alone, as a ``CutLine`` of its head."""
    read = getattr(handle, "read1", handle.read)  # read1: a live pipe is not held until 1 MiB
    carry = b""
    long_head: bytes | None = None  # an over-long line being read past: its head and length so far
    long_size = 0
    while True:
        block = read(block_size)
        if not block:
            break
        if progress is not None:
            progress.read_bytes += len(block)
        if long_head is not None:
            newline = block.find(b"\n")
            if newline < 0:
                long_size += len(block)
                continue
            long_size += newline
            yield _cut_counted(long_head, long_size, progress)
            long_head = None
            block = block[newline + 1:]
            if not block:
                continue
        data = carry + block if carry else block
        end = data.rfind(b"\n") + 1
        if len(data) > MAX_LINE_BYTES:
            yield from _cut_lines(data, end, size, progress)
            carry = data[end:]
            if len(carry) > MAX_LINE_BYTES:
                long_head, long_size, carry = carry[:MAX_LINE_BYTES], len(carry), b""
            continue
        carry = data[end:]
        if not end:
            continue
        text = data[:end].decode("utf-8", "surrogateescape")
        del block, data  # not held while the lines are consumed (the merge keeps every file open)
        lines = text.split("\n")
        lines.pop()  # the empty piece after the last newline
        if "\r" in text:
            lines = [line.rstrip("\r") for line in lines]
        # `text` stays until the next block is decoded: freed here, right after the block, it
        # left a free stretch at the top of the heap that glibc gave back to the system, and
        # the next block faulted those pages in again (~17k page faults per 100k lines, ~2%)
        if len(lines) <= size:
            yield lines
        else:
            for start in range(0, len(lines), size):
                yield lines[start:start + size]
    if long_head is not None:
        yield _cut_counted(long_head, long_size, progress)
    elif carry:
        yield [carry.decode("utf-8", "surrogateescape").rstrip("\r\n")]


def _cut_counted(head: bytes, size: int, progress: ReadProgress | None) -> CutLine:
    """The batch of an over-long line of ``size`` bytes starting with ``head``, counted."""
    if progress is not None:
        progress.cut_lines += 1
        progress.cut_bytes += size - len(head)
    batch = CutLine([head.decode("utf-8", "surrogateescape").rstrip("\r")])
    batch.original_bytes = size
    return batch


def _cut_lines(data: bytes, end: int, size: int, progress: ReadProgress | None) -> Iterator[list[str]]:
    """The slow path for a buffer holding an overlong line: the complete lines up to ``end``
    in batches, each over-long one alone as a ``CutLine``."""
    lines: list[str] = []
    start = 0
    while start < end:
        stop = data.index(b"\n", start, end)
        if stop - start > MAX_LINE_BYTES:
            if lines:
                yield lines
                lines = []
            yield _cut_counted(data[start:start + MAX_LINE_BYTES], stop - start, progress)
        else:
            lines.append(data[start:stop].decode("utf-8", "surrogateescape").rstrip("\r"))
            if len(lines) >= size:
                yield lines
                lines = []
        start = stop + 1
    if lines:
        yield lines


def event_batches_of(source: InputFile, progress: ReadProgress | None = None,
                     received: datetime | None = None, block_size: int = READ_BLOCK,
                     inflate: InflateLimits | None = None,
                     gate: RecordGate | None = None) -> Iterator[list[Event]]:
    """The events of one input, in file order, as non-empty lists (the events of one batch of
    lines): the merge takes them a list at a time instead of one generator hand-off per event.
    ``gate``: the record prefilter (detect/prefilter.py); records it lets through stay header
    events (parsers/lazy.py)."""
    ctx = ParseContext(host=source.host, origin=source.origin, received=received or datetime.now(UTC),
                       year=source.year, service=source.service)
    framer = Framer(ctx, ref_prefix=source.ref_prefix, gate=gate)
    handle = open_input(source, inflate, progress)
    tally = _Tally(source, progress)
    # The total is of the files' sizes on disk: a .gz file's share done is its compressed
    # position, not the (several times larger) text read out of it (ReadProgress.inflated).
    raw = handle.raw if isinstance(handle, _Closing) else None
    if source.fingerprint is not None or raw is not None:
        handle = counted = _Counting(handle, source.fingerprint)
    compressed = text = 0  # of a .gz file: compressed bytes consumed, text bytes read
    try:
        lineno = 1
        for batch in read_line_batches(handle, progress, block_size=block_size):
            if type(batch) is CutLine:  # a record of its own (never a continuation), kept unparsed
                events = framer.flush()
                events += [mark_truncated(event, batch.original_bytes)
                           for event in framer.feed_lines(batch, lineno)]
            else:
                events = framer.feed_lines(batch, lineno)
            lineno += len(batch)
            if raw is not None and progress is not None:
                progress.inflated += (counted.bytes_read - text) - (raw.tell() - compressed)
                compressed, text = raw.tell(), counted.bytes_read
            tally.take(events, framer.stats)
            if events:
                yield events
        source.lines = lineno - 1
        if source.fingerprint is not None:
            source.text_bytes = counted.bytes_read
        events = framer.flush()
        tally.take(events, framer.stats)
        if events:
            yield events
    finally:
        if source.path is not None:
            handle.close()
        tally.close(framer.stats)


class _Counting:
    """A handle that counts the bytes read out of it and, given a hash, hashes them (an input's
    fingerprint, see ingested.py)."""

    def __init__(self, handle: ByteSource, fingerprint: Any = None) -> None:
        self.handle = handle
        self.fingerprint = fingerprint
        self.bytes_read = 0

    def read1(self, size: int = -1) -> bytes:
        block: bytes = getattr(self.handle, "read1", self.handle.read)(size)
        if self.fingerprint is not None:
            self.fingerprint.update(block)
        self.bytes_read += len(block)
        return block

    read = read1

    def close(self) -> None:
        self.handle.close()


_service_of = operator.attrgetter("service")
_host_of = operator.attrgetter("host")


class _Tally:
    """Counts as one input is read: its records into the shared progress as they are framed
    (the progress bar shows them while a large file is read, not only once it is done), and
    the events it gives no known service or no host. Those two are counted only where they
    can be missing, a list at a time in C: a file with a known service name and a host gives
    every event both."""

    __slots__ = ("check_host", "check_service", "counted", "hint", "progress", "source")

    def __init__(self, source: InputFile, progress: ReadProgress | None) -> None:
        self.source = source
        self.progress = progress
        self.hint = source.service
        self.check_service = not self.hint or self.hint not in known_services()
        self.check_host = not source.host
        self.counted = 0  # records already added to the progress

    def take(self, events: list[Event], stats: FramingStats) -> None:
        if self.progress is not None:
            self.progress.stats.records += stats.records - self.counted
            self.counted = stats.records
        if not events:
            return
        source = self.source
        source.events += len(events)
        if self.check_service:
            services = list(map(_service_of, events))
            source.unattributed += operator.countOf(services, "")
            if self.hint:
                source.unattributed += operator.countOf(services, self.hint)
        if self.check_host:
            source.hostless += operator.countOf(map(_host_of, events), "")

    def close(self, stats: FramingStats) -> None:
        if self.progress is not None:
            self.progress.stats.add(stats)
            self.progress.stats.records -= self.counted


def guarded_batches(source: InputFile, progress: ReadProgress | None = None,
                    received: datetime | None = None, block_size: int = READ_BLOCK,
                    inflate: InflateLimits | None = None,
                    gate: RecordGate | None = None) -> Iterator[list[Event]]:
    """``event_batches_of``, except that an error reading the file (a corrupt .gz, a parser
    raising on a record) ends this file only: what was read of it is kept and the error is
    named in ``progress.stopped`` (the other files are read on). Without a progress to
    report to, the error is raised. A worker process reads its files through this too, so
    ``--jobs N`` ends a bad file where one process does."""
    try:
        yield from event_batches_of(source, progress, received, block_size, inflate, gate)
    except Exception as exc:
        if progress is None:
            raise
        log.debug("reading %s failed", source.name, exc_info=True)
        kind = type(exc)
        name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        progress.stopped.append(f"{source.name}: {name}: {exc} (after {source.events:,} events); "
                                "the rest of the file was not read")


def read_event_batches(inputs: list[InputFile], progress: ReadProgress | None = None,
                       inflate: InflateLimits | None = None, pool: Any = None,
                       received: datetime | None = None,
                       gate: RecordGate | None = None) -> Iterator[list[Event]]:
    """All inputs merged in event-time order, as lists of events: ``read_events`` a list at a
    time, for a consumer whose own per-event overhead matters. ``pool`` (a
    ``workers.ReaderPool``): the files are read and parsed in its worker processes, and merged
    here in the same order. ``received``: every event's receive time (default: now).
    ``gate``: the record prefilter (header events for the records it lets through; not with
    a pool: a header event holds its parser and does not cross a pipe)."""
    received = received or datetime.now(UTC)
    if progress is not None:
        progress.total_bytes = sum(source.size for source in inputs)
    block_size = max(MIN_READ_BLOCK, min(READ_BLOCK, READ_BUDGET // max(1, len(inputs))))
    if pool is not None and progress is not None:
        from stackwatch.pipeline.workers import ReadOptions

        remote = iter(pool.streams(inputs, progress, ReadOptions(received, block_size, inflate)))
        streams = [next(remote) if source.path is not None
                   else guarded_batches(source, progress, received, block_size, inflate)
                   for source in inputs]
    else:
        streams = [guarded_batches(source, progress, received, block_size, inflate, gate)
                   for source in inputs]
    if len(streams) == 1:
        return streams[0]
    return merge_by_time(streams)


def read_events(inputs: list[InputFile], progress: ReadProgress | None = None,
                gate: RecordGate | None = None) -> Iterator[Event]:
    """All inputs merged in event-time order (each file is assumed roughly time-sorted,
    as logs are). Memory: one batch of pending events per open file. ``gate``: see
    ``read_event_batches``."""
    return chain.from_iterable(read_event_batches(inputs, progress, gate=gate))


_time_of = operator.attrgetter("time")


class _Pending:
    """The unmerged events of one stream: its current list, and how far into it the merge is.

    ``run_end`` ends the run of events from ``next`` on whose times never go down (all of the
    list for a time-sorted file); ``run_last`` is the time of the run's last event."""

    __slots__ = ("events", "next", "rest", "run_end", "run_last", "times")

    def __init__(self, events: list[Event], rest: Iterator[list[Event]]) -> None:
        self.rest = rest
        self.take(events)

    def take(self, events: list[Event]) -> None:
        self.events = events
        self.times = list(map(_time_of, events))
        self.next = 0
        self.find_run()

    def refill(self) -> bool:
        """Take the stream's next non-empty list; False once the stream is exhausted."""
        for events in self.rest:
            if events:
                self.take(events)
                return True
        return False

    def find_run(self) -> None:
        times, start = self.times, self.next
        # the first event earlier than the one before it, found by C-level iterators
        drops = compress(count(start + 1),
                         map(operator.lt, islice(times, start + 1, None), islice(times, start, None)))
        self.run_end = next(drops, len(times))
        self.run_last = times[self.run_end - 1]


_run_last = operator.attrgetter("run_last")

SMALL_ROUNDS = 4
"""Rounds in a row that took fewer events than there are streams before the merge goes head
by head for a while: a round costs a step per stream, so files that often go back in time
(short sorted runs: short rounds) would make it several times slower than heapq.merge."""

HEAD_BY_HEAD_STEPS = 64
"""Events per stream merged head by head before rounds are tried again."""

HEAD_BY_HEAD_LIST = 256
"""Events handed on at a time when merging head by head."""


def merge_by_time(streams: list[Iterator[list[Event]]]) -> Iterator[list[Event]]:
    """Lists of events whose concatenation is exactly ``heapq.merge(*flattened streams,
    key=time)``: the earliest head first, ties to the lower stream index, and a file that goes
    back in time merged the way heapq.merge would (it only ever compares heads).

    heapq.merge pays a heap operation and two generator hand-offs per event. Here a round
    (``_take_round``) takes many events at once, sorted in C; where rounds come out short,
    a stretch is merged head by head (``_head_by_head``) as heapq.merge does. Both
    leave every stream at the same place heapq.merge would, so they can take turns."""
    pending: list[_Pending] = []
    for stream in streams:
        for events in stream:
            if events:
                pending.append(_Pending(events, stream))
                break
    small_rounds = 0
    while len(pending) > 1:
        chunk = _take_round(pending)
        yield chunk
        small_rounds = small_rounds + 1 if len(chunk) < len(pending) else 0
        if small_rounds >= SMALL_ROUNDS and len(pending) > 1:
            small_rounds = 0
            yield from _head_by_head(pending, HEAD_BY_HEAD_STEPS * len(pending))
    if pending:
        last = pending[0]
        yield last.events[last.next:]
        yield from last.rest


def _take_round(pending: list[_Pending]) -> list[Event]:
    """Every stream's pending events up to the earliest end of a stream's sorted run, in
    merge order. Up to that bound every stream's head stays inside its sorted run, where
    taking the smallest head again and again is the same as sorting (stably, in stream
    order, so ties keep heapq's order). The run that bounded the round is used up: its stream
    moves on to its next run or list, or leaves ``pending``."""
    bound = min(pending, key=_run_last)  # the first of equal times: the lower stream index
    limit = bound.run_last
    chunk: list[Event] = []
    before_bound = True
    for head in pending:
        start = head.next
        if head is bound:
            end = head.run_end
            before_bound = False
        elif before_bound:  # a lower index: its events at the bound's time come first
            end = bisect.bisect_right(head.times, limit, start, head.run_end)
        else:
            end = bisect.bisect_left(head.times, limit, start, head.run_end)
        if end > start:
            chunk += head.events[start:end]
            head.next = end
    chunk.sort(key=_time_of)  # stable: runs concatenated in stream order keep ties in order
    if bound.next < len(bound.events):
        bound.find_run()
    elif not bound.refill():
        pending.remove(bound)
    return chunk


def _head_by_head(pending: list[_Pending], steps: int) -> Iterator[list[Event]]:
    """Up to ``steps`` events merged as heapq.merge does (one heap operation per event), in
    lists of at most HEAD_BY_HEAD_LIST events (the events taken are held until consumed)."""
    heap: list[list[Any]] = []  # [head's time, stream order, head event, rest of its list, stream]
    for order, head in enumerate(pending):
        rest = iter(head.events[head.next:])
        event = next(rest)
        heap.append([event.time, order, event, rest, head])
    heapq.heapify(heap)
    while steps > 0 and len(heap) > 1:
        taking = min(steps, HEAD_BY_HEAD_LIST)
        steps -= taking
        out: list[Event] = []
        for _ in range(taking):
            top = heap[0]
            out.append(top[2])
            following: Event | None = next(top[3], None)
            if following is None:
                head = top[4]
                head.next = len(head.events)
                if not head.refill():
                    heapq.heappop(heap)
                    pending.remove(head)
                    if len(heap) < 2:
                        break
                    continue
                top[3] = rest = iter(head.events)
                following = next(rest)
            top[0] = following.time
            top[2] = following
            heapq.heapreplace(heap, top)
        yield out
    for _, _, _, rest, head in heap:  # where each stream stands, for the rounds
        head.next = len(head.events) - operator.length_hint(rest) - 1
        if head.next >= head.run_end:
            head.find_run()
