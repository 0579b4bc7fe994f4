"""RELP: the frame parser, a session as librelp runs it, acknowledgements only after commit,
resends recognised, malformed frames closing only their own session (and saying why)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from stackwatch.config import parse_config
from stackwatch.sources.base import Record, SourceContext
from stackwatch.sources.relp import RelpSource
from stackwatch.sources.relp_frames import Frame, FrameParser, RelpProtocolError, encode, next_txnr
from tests.servetools import run

OPEN = b"relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"


def msg(i: int) -> bytes:
    stamp = b"2026-11-27T10:00:%02d.%06dZ" % (i % 60, i)
    return b"<38>1 " + stamp + b" node1 sshd 42 - - Failed password for root from 203.0.113.9"


# ---------------------------------------------------------------------------- frames


@pytest.mark.parametrize("split", [1, 3, 7, 1000])
def test_frames_parse_in_any_chunking(split: int) -> None:
    stream = encode(1, "open", OPEN) + encode(2, "syslog", b"a\nb c") + encode(3, "close")
    parser = FrameParser(1024)
    frames = [f for i in range(0, len(stream), split) for f in parser.feed(stream[i : i + split])]
    assert frames == [Frame(1, "open", OPEN), Frame(2, "syslog", b"a\nb c"), Frame(3, "close", b"")]


def test_oversize_data_is_cut_and_the_stream_goes_on() -> None:
    parser = FrameParser(64)
    frames = parser.feed(encode(5, "syslog", b"x" * 300) + encode(6, "syslog", b"ok"))
    assert frames == [Frame(5, "syslog", b"x" * 64, 300), Frame(6, "syslog", b"ok")]


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"GET / HTTP/1.1\r\n", "not a RELP frame header"),
        (b"1 syslog 5 abcdeX", "no LF after its 5 data bytes"),
        (b"1 syslog 99999999999 x", "not a RELP frame header"),  # DATALEN over 9 digits
        (b"0 syslog 1 x\n", "transaction number 0 out of range"),
        (b"1 SYSLOG 1 x\n", "not a RELP frame header"),
        (b"1 syslog 3\n", "announces 3 bytes but has none"),
        (b"x" * 80, "not a RELP frame header"),  # no LF for longer than any header
    ],
)
def test_garbage_is_a_protocol_error(stream: bytes, reason: str) -> None:
    with pytest.raises(RelpProtocolError, match=reason):
        FrameParser(1024).feed(stream)


def test_oversize_close_mode_refuses_the_frame() -> None:
    with pytest.raises(RelpProtocolError, match="exceeds 64"):
        FrameParser(64, truncate=False).feed(b"7 syslog 65 ")


def test_transaction_numbers_wrap_as_librelp_does() -> None:
    assert next_txnr(41) == 42 and next_txnr(999_999_999) == 1


# ---------------------------------------------------------------------------- sessions


def _source(tmp_path: Path, extra: str = "") -> RelpSource:
    settings = parse_config(
        f"sources:\n  - {{type: relp, name: r, listen: '127.0.0.1:0'{extra}}}\n", "serve.yaml"
    ).sources[0]
    context = SourceContext(queue_size=10_000, wake=asyncio.Event(), state_dir=str(tmp_path), hostname="t")
    return RelpSource(settings, context)


async def _read_frames(reader: asyncio.StreamReader, count: int, timeout: float = 5.0) -> list[Frame]:
    parser, frames = FrameParser(65536), []
    while len(frames) < count:
        data = await asyncio.wait_for(reader.read(65536), timeout)
        if not data:
            break
        frames.extend(parser.feed(data))
    return frames


async def _wait_queue(source: RelpSource, count: int) -> None:
    for _ in range(500):
        if len(source.queue) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"queue holds {len(source.queue)}, expected {count}")


async def _commit(source: RelpSource) -> list:
    events = source.decode(source.queue.take(100_000))
    await source.commit(source.checkpoint())
    return events


def test_open_is_answered_with_our_offers_and_syslog_is_acked_only_after_commit(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Frame], bytes, list[Frame], list, bytes]:
        source = _source(tmp_path)
        await source.start()
        reader, writer = await asyncio.open_connection(*source.address)
        writer.write(encode(1, "open", OPEN) + b"".join(encode(2 + i, "syslog", msg(i)) for i in range(3)))
        opened = await _read_frames(reader, 1)
        await _wait_queue(source, 3)
        try:  # queued, decoded or not: nothing acknowledged before the commit
            early = await asyncio.wait_for(reader.read(100), 0.3)
        except TimeoutError:
            early = b""
        events = await _commit(source)
        acks = await _read_frames(reader, 3)
        writer.write(encode(5, "close"))
        closed = await _read_frames(reader, 1)
        end = await asyncio.wait_for(reader.read(100), 5)
        await source.stop()
        return opened, early, acks + closed, events, end

    opened, early, acks, events, end = run(scenario())
    assert opened[0].txnr == 1 and opened[0].command == "rsp"
    assert opened[0].data.startswith(b"200 OK\nrelp_version=0\n") and b"commands=syslog" in opened[0].data
    assert early == b""
    assert [(f.txnr, f.command, f.data) for f in acks] == [
        (2, "rsp", b"200 OK"), (3, "rsp", b"200 OK"), (4, "rsp", b"200 OK"), (5, "rsp", b"")]
    assert end == b""  # the connection ends after the close is answered
    assert len(events) == 3 and events[0].action == "authenticate" and events[0].host == "node1"
    assert events[0].origin == "relp:r" and events[0].ref.startswith("relp:")


def test_close_waits_for_the_pending_acknowledgements(tmp_path: Path) -> None:
    async def scenario() -> list[Frame]:
        source = _source(tmp_path)
        await source.start()
        reader, writer = await asyncio.open_connection(*source.address)
        writer.write(encode(1, "open", OPEN) + encode(2, "syslog", msg(1)) + encode(3, "close"))
        await _read_frames(reader, 1)
        await _wait_queue(source, 1)
        await asyncio.sleep(0.1)
        await _commit(source)
        frames = await _read_frames(reader, 2)
        await source.stop()
        return frames

    frames = run(scenario())
    assert [(f.txnr, f.data) for f in frames] == [(2, b"200 OK"), (3, b"")]  # the close answered last


def test_a_resent_message_is_acknowledged_but_stored_once(tmp_path: Path) -> None:
    async def scenario() -> tuple[list, list, int]:
        source = _source(tmp_path)
        await source.start()
        first = []
        for session in range(2):  # the second session resends what the first never saw acked
            reader, writer = await asyncio.open_connection(*source.address)
            writer.write(
                encode(1, "open", OPEN) + encode(2, "syslog", msg(7)) + encode(3, "syslog", msg(8 + session))
            )
            await _read_frames(reader, 1)
            await _wait_queue(source, 2)
            first.append(await _commit(source))
            acks = await _read_frames(reader, 2)
            assert [f.txnr for f in acks] == [2, 3]
            writer.close()
        await source.stop()
        return first[0], first[1], source.counters.duplicates

    one, two, duplicates = run(scenario())
    assert len(one) == 2 and len(two) == 1 and duplicates == 1


def test_the_newest_stored_refs_are_recognised_after_a_restart(tmp_path: Path) -> None:
    async def scenario() -> list:
        probe = _source(tmp_path)
        stored_ref = probe.decode([_record(msg(3))])[0].ref  # the ref this message was stored under
        source = _source(tmp_path)
        source.context.recent_refs = lambda prefix: {stored_ref} if prefix == "relp:" else set()
        await source.start()
        reader, writer = await asyncio.open_connection(*source.address)
        writer.write(encode(1, "open", OPEN) + encode(2, "syslog", msg(3)) + encode(3, "syslog", msg(4)))
        await _read_frames(reader, 1)
        await _wait_queue(source, 2)
        events = await _commit(source)
        assert [f.txnr for f in await _read_frames(reader, 2)] == [2, 3]  # both acknowledged
        await source.stop()
        return events

    events = run(scenario())
    assert [e.raw for e in events] == [msg(4).decode()]


def _record(data: bytes) -> Record:

    return Record(data.decode(), 0.0, "127.0.0.1", (None, 0))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (encode(9, "syslog", b"<13>wrong txnr"), "transaction number 9 where 4 was expected"),
        (b"4 syslog 10 0123456789XX\n", "no LF after its 10 data bytes"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\n", "not a RELP frame header"),
        (encode(4, "syslog", b"<13>" + b"y" * 300), "syslog frame of 304 bytes exceeds 256"),
    ],
)
def test_a_malformed_frame_closes_its_session_only_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: bytes, reason: str
) -> None:
    async def scenario() -> tuple[list[Frame], bytes, list, list[Frame]]:
        source = _source(tmp_path, ", max_message_bytes: 256, oversize: close")
        await source.start()
        other_reader, other = await asyncio.open_connection(*source.address)
        other.write(encode(1, "open", OPEN))
        await _read_frames(other_reader, 1)
        reader, writer = await asyncio.open_connection(*source.address)
        writer.write(encode(1, "open", OPEN) + encode(2, "syslog", msg(1)) + encode(3, "syslog", msg(2)))
        await _read_frames(reader, 1)
        await _wait_queue(source, 2)
        writer.write(bad)
        hint = await _read_frames(reader, 1)
        end = await asyncio.wait_for(reader.read(100), 5)
        other.write(encode(2, "syslog", msg(3)))  # the other session goes on
        await _wait_queue(source, 3)
        events = await _commit(source)
        other_ack = await _read_frames(other_reader, 1)
        await source.stop()
        return hint, end, events, other_ack

    with caplog.at_level(logging.WARNING, logger="stackwatch.sources.relp"):
        hint, end, events, other_ack = run(scenario())
    assert [(f.txnr, f.command) for f in hint] == [(0, "serverclose")] and end == b""
    assert [e.raw for e in events] == [msg(1).decode(), msg(2).decode(), msg(3).decode()]  # nothing lost
    assert [(f.txnr, f.data) for f in other_ack] == [(2, b"200 OK")]
    logged = [r.getMessage() for r in caplog.records]
    assert any("closing the session from 127.0.0.1" in line and reason in line for line in logged), logged


def test_syslog_before_open_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> int:
        source = _source(tmp_path)
        await source.start()
        reader, writer = await asyncio.open_connection(*source.address)
        writer.write(encode(1, "syslog", msg(1)))
        await asyncio.wait_for(reader.read(100), 5)
        await source.stop()
        return len(source.queue)

    with caplog.at_level(logging.WARNING):
        assert run(scenario()) == 0
    assert "before the session was opened" in caplog.text


def test_oversize_is_truncated_and_flagged_by_default(tmp_path: Path) -> None:
    async def scenario() -> list:
        source = _source(tmp_path, ", max_message_bytes: 128")
        await source.start()
        reader, writer = await asyncio.open_connection(*source.address)
        big = b"<13>1 2026-11-27T10:00:00Z h app - - " + b"A" * 1000
        writer.write(encode(1, "open", OPEN) + encode(2, "syslog", big) + encode(3, "syslog", msg(1)))
        await _read_frames(reader, 1)
        await _wait_queue(source, 2)
        events = await _commit(source)
        assert [f.txnr for f in await _read_frames(reader, 2)] == [2, 3]
        await source.stop()
        return events

    big, small = run(scenario())
    assert big.attrs["truncated"] is True and big.attrs["original_bytes"] == 1037 and len(big.raw) == 128
    assert small.action == "authenticate"


def test_bad_oversize_setting_is_a_config_error() -> None:
    with pytest.raises(Exception, match="oversize must be one of truncate, close"):
        parse_config("sources:\n  - {type: relp, listen: '127.0.0.1:0', oversize: drop}\n", "serve.yaml")


def test_frames_before_a_bad_one_in_the_same_chunk_are_kept() -> None:
    stream = encode(1, "open", OPEN) + encode(2, "syslog", b"x") + b"3 syslog zz\n"
    frames, error = FrameParser(1024).parse(stream)
    assert [f.txnr for f in frames] == [1, 2]
    assert error is not None and "not a RELP frame header" in str(error)
