"""Tailing log files, through rotation, with offsets that survive a restart exactly.

Each file is followed by ``(st_dev, st_ino)`` and byte offset. An inotify watch on the
folder (asyncinotify, when available) wakes the reader; a stat poll every ``poll_interval``
is the fallback and the safety net. Rotation:

* rename (logrotate ``create``): the old file is read to its end, then the new file at the
  path is read from its start;
* truncate / ``copytruncate``: the size drops below our offset, so reading restarts at 0
  (a new *epoch* of the same inode);
* delete: the open descriptor is drained, then the path is watched until it comes back.

Exactly once across restarts: every event's ``ref`` is ``<path>@<ino>.<epoch>:<record start
offset>``. After the events of a batch are committed, the offset of the first byte not yet
committed is saved (``<state_dir>/file-offsets-<source name>.json``, atomic rename). On start, reading
resumes there; should the process have died between the store commit and the offsets save,
the records it would repeat are recognised by their refs among the newest stored events and
skipped. A file rotated while stackwatch was down is found by its inode in the same folder
and read to its end first.
"""


from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackwatch.config.schema import Seconds, setting
from stackwatch.core.event import Event
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.framing import Framer
from stackwatch.parsers.service_hints import service_hint
from stackwatch.sources.base import Record, Source, SourceContext, SourceSettings, mark_truncated

READ_SIZE = 256 * 1024
OFFSETS_FILE = "file-offsets-{name}.json"


@dataclass(frozen=True, kw_only=True)
class FileSettings(SourceSettings):
    paths: list[str] = setting(help="files to follow (absolute paths)")
    start_at: str = setting("end", "where to start a file seen for the first time: end or beginning")
    poll_interval: Seconds = setting(Seconds(0.25), "stat poll period (inotify wakes the reader sooner)")
    idle_flush: Seconds = setting(
        Seconds(0.5), "a multi-line record (traceback) is closed after this long without another line"
    )

    def validate(self) -> None:
        super().validate()
        if not self.paths:
            raise ValueError("paths: at least one file is needed")
        if self.start_at not in ("end", "beginning"):
            raise ValueError("start_at must be end or beginning")
        for path in self.paths:
            if not os.path.isabs(path):
                raise ValueError(f"paths: {path!r} is not an absolute path")


class Generation:
    """One incarnation of a file: an inode, and an epoch bumped by every truncation."""

    def __init__(self, path: str, dev: int, ino: int, epoch: int, host: str, service: str) -> None:
        self.path, self.dev, self.ino, self.epoch = path, dev, ino, epoch
        self.key = f"{path}@{ino}.{epoch}"
        ctx = ParseContext(host=host, origin=f"file:{path}", service=service or service_hint(Path(path).name))
        self.framer = Framer(ctx, ref_prefix=self.key)
        self.skip_upto = -1  # records starting at or before this offset are already stored
        self.truncated: dict[int, int] = {}  # start offset -> original size of truncated lines
        self.last_end = 0  # end offset of the last line decoded
        self.last_fed = 0.0

    def safe_offset(self) -> int:
        """Offset before which every record has been emitted (the open record starts here)."""
        framer = self.framer
        # The Framer keeps the open record's first line number; we feed byte offsets as line numbers.
        return framer._first_lineno if framer._parser is not None else self.last_end

    def take(self, events: list[Event]) -> list[Event]:
        out = []
        for event in events:
            start = int(event.ref.rpartition(":")[2] or -1)
            if start <= self.skip_upto:
                continue
            original = self.truncated.pop(start, 0)
            out.append(mark_truncated(event, original) if original else event)
        return out


class _Follow:
    """Reader-side state of one path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.gen: Generation | None = None
        self.pos = 0  # next byte to read
        self.partial = b""
        self.discarding = False  # inside an oversize line


class FileTailSource(Source):
    Settings = FileSettings

    def __init__(self, settings: FileSettings, context: SourceContext) -> None:
        super().__init__(settings, context)
        self.follows = [_Follow(p) for p in settings.paths]
        self.offsets_path = Path(context.state_dir) / OFFSETS_FILE.format(name=self.name)
        self._saved: dict[str, Any] = {}
        self._decoding: dict[str, Generation] = {}
        self._stored: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._notify_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._saved = _read_offsets(self.offsets_path)
        recent = self.context.recent_refs("file:") if self.context.recent_refs else set()
        for ref in recent:
            key, _, offset = ref.rpartition(":")
            if offset.isdigit():
                self._stored[key] = max(self._stored.get(key, -1), int(offset))
        for follow in self.follows:
            self._resume(follow)
        self._task = asyncio.create_task(self._run(), name=f"tail:{self.name}")
        self._notify_task = asyncio.create_task(self._inotify(), name=f"inotify:{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._task, self._notify_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for follow in self.follows:
            if follow.fd is not None:
                os.close(follow.fd)
                follow.fd = None

    def _new_gen(self, path: str, st: os.stat_result, epoch: int) -> Generation:
        gen = Generation(path, st.st_dev, st.st_ino, epoch, self.settings.host, self.settings.service)
        gen.skip_upto = self._stored.get(gen.key, -1)
        return gen

    def _resume(self, follow: _Follow) -> None:
        """Open a path at its saved offset (first draining a file rotated while we were down)."""
        saved = self._saved.get(follow.path)
        try:
            st = os.stat(follow.path)
        except FileNotFoundError:
            st = None
        if saved is not None:
            dev, ino, epoch, offset = saved["dev"], saved["ino"], saved["epoch"], saved["offset"]
            if st is not None and (st.st_dev, st.st_ino) == (dev, ino):
                if st.st_size < offset:  # truncated while we were down
                    epoch, offset = epoch + 1, 0
                self._open(follow, follow.path, st, epoch, offset)
                return
            rotated = _find_inode(Path(follow.path).parent, dev, ino)
            if rotated is not None:  # rotated away while we were down: finish it first
                rst = os.stat(rotated)
                self._open(follow, rotated, rst, epoch, min(offset, rst.st_size), logical=follow.path)
                return
            if st is not None:
                self._open(follow, follow.path, st, 0, 0)
            return
        if st is not None:
            self._open(follow, follow.path, st, 0, st.st_size if self.settings.start_at == "end" else 0)

    def _open(
        self,
        follow: _Follow,
        real: str,
        st: os.stat_result,
        epoch: int,
        offset: int,
        logical: str | None = None,
    ) -> None:
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            self.counters.errors += 1
            return
        if follow.fd is not None:
            os.close(follow.fd)
        os.lseek(fd, offset, os.SEEK_SET)
        follow.fd, follow.pos, follow.partial, follow.discarding = fd, offset, b"", False
        follow.gen = self._new_gen(logical or real, st, epoch)
        follow.gen.last_end = offset

    # ------------------------------------------------------------------ reading

    async def _run(self) -> None:
        interval = float(self.settings.poll_interval)
        while not self._stopping:
            for follow in self.follows:
                try:
                    await self._poll(follow)
                except OSError:
                    self.counters.errors += 1
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def _poll(self, follow: _Follow) -> None:
        if follow.fd is None:
            self._resume(follow)
            if follow.fd is None:
                return
        await self._drain(follow)
        try:
            st = os.stat(follow.path)
        except FileNotFoundError:
            return  # moved or deleted: keep the old descriptor until a new file appears
        gen = follow.gen
        assert gen is not None and follow.fd is not None
        if (st.st_dev, st.st_ino) != (gen.dev, gen.ino):  # rotated by rename: finish the old one
            await self._drain(follow)
            await self._end_line(follow)
            self._open(follow, follow.path, st, 0, 0)
            await self._drain(follow)
        elif os.fstat(follow.fd).st_size < follow.pos:  # truncated (copytruncate)
            await self._end_line(follow)
            self._open(follow, follow.path, st, gen.epoch + 1, 0)
            await self._drain(follow)

    async def _drain(self, follow: _Follow) -> None:
        assert follow.fd is not None and follow.gen is not None
        while True:
            data = os.read(follow.fd, READ_SIZE)
            if not data:
                return
            start = follow.pos - len(follow.partial)
            follow.pos += len(data)
            chunk = follow.partial + data if follow.partial else data
            lines = chunk.split(b"\n")
            follow.partial = lines.pop()
            records = []
            gen, now, offset = follow.gen, time.time(), start
            for line in lines:
                end = offset + len(line) + 1
                if follow.discarding:
                    follow.discarding = False
                else:
                    records.append(self._record(gen, line, offset, end, now))
                offset = end
            if len(follow.partial) > self.max_bytes and not follow.discarding:
                records.append(self._record(gen, follow.partial, offset, offset + len(follow.partial), now))
                follow.discarding = True
                follow.partial = b""
            elif follow.discarding:
                follow.partial = b""
            if records:
                await self.bucket.wait(len(records))
                await self.queue.put_many(records)
                self.counters.received += len(records)
                self.counters.bytes += len(data)

    async def _end_line(self, follow: _Follow) -> None:
        """The last line of a file that is being left, even without its newline."""
        if follow.partial and follow.gen is not None and not follow.discarding:
            start = follow.pos - len(follow.partial)
            record = self._record(follow.gen, follow.partial, start, follow.pos, time.time())
            await self.queue.put(record)
            self.counters.received += 1
        follow.partial = b""

    def _record(self, gen: Generation, line: bytes, start: int, end: int, now: float) -> Record:
        if line.endswith(b"\r"):
            line = line[:-1]
        text, original = self.truncate(line)
        return Record(text, now, gen.path, (gen, start, end), original)

    async def _inotify(self) -> None:
        """Wake the reader on changes in the watched folders (polling covers the rest)."""
        try:
            from asyncinotify import Inotify, Mask
        except ImportError:
            return
        mask = (
            Mask.MODIFY
            | Mask.CREATE
            | Mask.MOVED_TO
            | Mask.MOVED_FROM
            | Mask.DELETE
            | Mask.CLOSE_WRITE
            | Mask.ATTRIB
        )
        try:
            with Inotify() as inotify:
                for folder in {str(Path(f.path).parent) for f in self.follows}:
                    with contextlib.suppress(OSError):
                        inotify.add_watch(folder, mask)
                async for _event in inotify:
                    self._wake.set()
        except OSError:  # no inotify here (some container / network file systems): poll only
            return

    # ------------------------------------------------------------------ worker side

    def decode(self, records: list[Record]) -> list[Event]:
        out: list[Event] = []
        for record in records:
            gen, start, end = record.meta
            current = self._decoding.get(gen.path)
            if current is not gen:
                if current is not None:
                    out.extend(current.take(current.framer.flush()))
                self._decoding[gen.path] = gen
            if record.original_size:
                gen.truncated[start] = record.original_size
            out.extend(gen.take(gen.framer.feed(record.text, start)))
            gen.last_end = end
            gen.last_fed = record.received
        return out

    def delivery_delay(self) -> float:
        """A poll period (inotify wakes the reader sooner, where it works: not on every file
        system), plus ``idle_flush`` while a multi-line record is held open."""
        delay = float(self.settings.poll_interval)
        if any(gen.framer._parser is not None for gen in self._decoding.values()):
            delay += float(self.settings.idle_flush)
        return delay

    def idle(self, now: float) -> list[Event]:
        out: list[Event] = []
        wait = float(self.settings.idle_flush)
        for gen in self._decoding.values():
            if gen.framer._parser is not None and now - gen.last_fed >= wait:
                out.extend(gen.take(gen.framer.flush()))
        return out

    def checkpoint(self) -> dict[str, dict[str, int]]:
        return {
            path: {"dev": gen.dev, "ino": gen.ino, "epoch": gen.epoch, "offset": gen.safe_offset()}
            for path, gen in self._decoding.items()
        }

    async def commit(self, token: Any) -> None:
        if not token or all(self._saved.get(path) == state for path, state in token.items()):
            return
        self._saved.update(token)
        _write_offsets(self.offsets_path, self._saved)


def _find_inode(folder: Path, dev: int, ino: int) -> str | None:
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) == (dev, ino) and entry.is_file(follow_symlinks=False):
                    return entry.path
    return None


def _read_offsets(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_offsets(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
