"""File tailing: appends, rename rotation, copytruncate, multi-line records, and exact
resumption from saved offsets (and from the store when the offsets save was lost)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from stackwatch.config import parse_config
from stackwatch.core.event import Event
from stackwatch.sources.base import SourceContext
from stackwatch.sources.file_tail import FileTailSource
from tests.servetools import run


def line(i: int) -> str:
    return f"Nov 27 10:00:{i % 60:02d} ctl1 app[7]: message number {i}\n"


def numbers(events: list[Event]) -> list[int]:
    return [int(e.message.rsplit(" ", 1)[1]) for e in events]


def _source(
    tmp_path: Path, log: Path, refs: Callable[[str], set[str]] | None = None, extra: str = ""
) -> FileTailSource:
    yaml = (
        f"sources:\n  - {{type: file, name: t, paths: ['{log}'], start_at: beginning, "
        f"poll_interval: 50ms, idle_flush: 100ms{extra}}}\n"
    )
    settings = parse_config(yaml).sources[0]
    context = SourceContext(
        queue_size=100_000,
        wake=asyncio.Event(),
        state_dir=str(tmp_path / "state"),
        hostname="t",
        recent_refs=refs,
    )
    return FileTailSource(settings, context)


async def _collect(
    source: FileTailSource, want: int, commit: bool = True, timeout: float = 5.0
) -> list[Event]:
    """Decode until ``want`` events came out; commit (save offsets) like the runner does."""
    out: list[Event] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(out) < want and loop.time() < deadline:
        out += source.decode(source.queue.take(10_000))
        out += source.idle(time.time())
        if commit:
            await source.commit(source.checkpoint())
        await asyncio.sleep(0.02)
    return out


def _append(path: Path, first: int, last: int) -> None:
    with path.open("a") as handle:
        handle.write("".join(line(i) for i in range(first, last)))


def test_follows_appends_and_rename_rotation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _append(log, 0, 5)

    async def scenario() -> list[Event]:
        source = _source(tmp_path, log)
        await source.start()
        events = await _collect(source, 5)
        _append(log, 5, 8)
        os.rename(log, tmp_path / "app.log.1")  # logrotate "create"
        _append(tmp_path / "app.log.1", 8, 10)  # the writer still has the old file open
        await asyncio.sleep(0.1)
        _append(log, 10, 15)  # the new file
        events += await _collect(source, 10)
        await source.stop()
        return events

    events = run(scenario())
    assert numbers(events) == list(range(15))
    assert len({e.ref for e in events}) == 15 and events[0].origin == f"file:{log}"


def test_copytruncate_restarts_at_zero(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _append(log, 0, 20)

    async def scenario() -> list[Event]:
        source = _source(tmp_path, log)
        await source.start()
        events = await _collect(source, 20)
        (tmp_path / "app.log.1").write_bytes(log.read_bytes())  # copy ...
        os.truncate(log, 0)  # ... truncate
        await asyncio.sleep(0.2)
        _append(log, 20, 23)
        events += await _collect(source, 3)
        await source.stop()
        return events

    events = run(scenario())
    assert numbers(events) == list(range(23))


def test_multiline_record_is_closed_when_idle(tmp_path: Path) -> None:
    log = tmp_path / "nova.log"
    log.write_text(
        "2026-11-27 10:00:00.001 123 ERROR nova.compute.manager [-] boom\n"
        'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\nValueError: bad\n'
    )

    async def scenario() -> list[Event]:
        source = _source(tmp_path, log)
        await source.start()
        events = await _collect(source, 1)
        await source.stop()
        return events

    (event,) = run(scenario())
    assert event.kind == "oslo_log" and event.raw.endswith("ValueError: bad") and event.raw.count("\n") == 3


def test_restart_resumes_at_the_saved_offset(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _append(log, 0, 10)

    async def first() -> list[Event]:
        source = _source(tmp_path, log)
        await source.start()
        events = await _collect(source, 10)
        await source.stop()
        return events

    async def second() -> list[Event]:
        source = _source(tmp_path, log)
        await source.start()
        events = await _collect(source, 5)
        await asyncio.sleep(0.2)
        events += source.decode(source.queue.take(10_000))
        await source.stop()
        return events

    assert numbers(run(first())) == list(range(10))
    _append(log, 10, 15)
    assert numbers(run(second())) == list(range(10, 15))


def test_lost_offset_save_is_recovered_from_stored_refs(tmp_path: Path) -> None:
    """The process died after the store commit but before the offsets were saved: the refs
    of the newest stored events tell the source what not to repeat."""
    log = tmp_path / "app.log"
    _append(log, 0, 10)
    stored: set[str] = set()

    async def first() -> None:
        source = _source(tmp_path, log)
        await source.start()
        events = await _collect(source, 10, commit=False)  # committed to the store, offsets never saved
        stored.update(e.ref for e in events)
        await source.stop()

    async def second() -> list[Event]:
        source = _source(tmp_path, log, refs=lambda prefix: set(stored) if prefix == "file:" else set())
        await source.start()
        events = await _collect(source, 3)
        await asyncio.sleep(0.2)
        events += source.decode(source.queue.take(10_000))
        await source.stop()
        return events

    run(first())
    _append(log, 10, 13)
    assert numbers(run(second())) == [10, 11, 12]


def test_file_rotated_while_down_is_finished_first(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    _append(log, 0, 5)

    async def first() -> None:
        source = _source(tmp_path, log)
        await source.start()
        await _collect(source, 5)
        await source.stop()

    async def second() -> list[Event]:
        source = _source(tmp_path, log)
        await source.start()
        events = await _collect(source, 6)
        await source.stop()
        return events

    run(first())
    _append(log, 5, 8)  # written after we stopped ...
    os.rename(log, tmp_path / "app.log.1")  # ... then rotated away
    _append(log, 8, 11)
    assert numbers(run(second())) == list(range(5, 11))


def test_oversize_line_is_truncated_and_flagged(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("Nov 27 10:00:00 ctl1 app[7]: " + "C" * 5000 + "\n" + line(1))

    async def scenario() -> list[Event]:
        source = _source(tmp_path, log, extra=", max_message_bytes: 1k")
        await source.start()
        events = await _collect(source, 2)
        await source.stop()
        return events

    big, small = run(scenario())
    assert big.attrs["truncated"] is True and len(big.raw) == 1024 and numbers([small]) == [1]


def test_delivery_delay_is_a_poll_plus_idle_flush_while_a_record_is_held_open(tmp_path: Path) -> None:
    """What a collector's idle watermark stays behind (cluster/collector.py idle_watermark): a
    record may be read a poll period after it was written, and a multi-line record held open is
    let go ``idle_flush`` after its last line."""
    log = tmp_path / "nova.log"
    log.write_text("2026-11-27 10:00:00.001 123 ERROR nova.compute.manager [-] boom\n")

    async def scenario() -> tuple[float, float, float]:
        source = _source(tmp_path, log)
        await source.start()
        before = source.delivery_delay()
        for _ in range(100):  # the line read: held open, a traceback may follow
            source.decode(source.queue.take(10_000))
            if source.delivery_delay() > before:
                break
            await asyncio.sleep(0.02)
        held = source.delivery_delay()
        await _collect(source, 1)  # idle_flush lets it go
        after = source.delivery_delay()
        await source.stop()
        return before, held, after

    before, held, after = run(scenario())
    assert (before, after) == (0.05, 0.05)
    assert abs(held - 0.15) < 1e-9
