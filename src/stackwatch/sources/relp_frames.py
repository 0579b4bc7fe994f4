"""RELP frames, as librelp writes and reads them: ``TXNR SP COMMAND SP DATALEN [SP DATA] LF``.

TXNR is 1..999999999 (it wraps to 1), COMMAND is lower-case letters (``open``, ``syslog``,
``close``, ``rsp``, ``serverclose``), DATALEN counts DATA's bytes (at most 9 digits). A frame
with no data is ``TXNR COMMAND 0`` followed directly by the trailer.

The parser is incremental and bounded: it never holds more than one header and
``max_data`` bytes of one frame's data. A DATALEN above ``max_data`` keeps the first
``max_data`` bytes (the rest is read past) and reports the original length, or, with
``oversize="close"``, is a protocol error. Anything that is not a frame is a protocol error:
the session cannot be resynchronised (DATA may contain anything), so the caller closes it.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

MAX_TXNR: Final = 999_999_999
_HEADER = re.compile(rb"(\d{1,9}) ([a-z]{1,32}) (\d{1,9})([ \n])")
_PREFIX = re.compile(rb"\d{0,9}(?: (?:[a-z]{0,32}(?: \d{0,9})?)?)?")  # a header still arriving
_HEADER_MAX: Final = 9 + 1 + 32 + 1 + 9 + 1


class RelpProtocolError(Exception):
    """The peer sent something that is not RELP (the session must be closed)."""


class Frame(NamedTuple):
    txnr: int
    command: str
    data: bytes
    original_size: int = 0  # DATALEN when the data was cut to max_data, else 0


def next_txnr(txnr: int) -> int:
    return 1 if txnr >= MAX_TXNR else txnr + 1


def encode(txnr: int, command: str, data: bytes = b"") -> bytes:
    if data:
        return b"%d %s %d %s\n" % (txnr, command.encode(), len(data), data)
    return b"%d %s 0\n" % (txnr, command.encode())


class FrameParser:
    """Bytes in, frames out; raises ``RelpProtocolError`` on the first malformed byte."""

    def __init__(self, max_data: int, *, truncate: bool = True) -> None:
        self.max_data = max_data
        self.truncate = truncate
        self.buffer = bytearray()
        self._head: tuple[int, str, int] | None = None  # the frame whose data is being read
        self._data = bytearray()
        self._left = 0  # data bytes of the current frame still to read
        self._trailer = False  # the data is complete: the LF comes next

    def feed(self, chunk: bytes) -> list[Frame]:
        frames, error = self.parse(chunk)
        if error is not None:
            raise error
        return frames

    def parse(self, chunk: bytes) -> tuple[list[Frame], RelpProtocolError | None]:
        """The frames completed by ``chunk`` and the error that stopped parsing (the frames
        before a bad one are good: the caller keeps them, then closes the session)."""
        out: list[Frame] = []
        try:
            self._parse(chunk, out)
        except RelpProtocolError as exc:
            return out, exc
        return out, None

    def _parse(self, chunk: bytes, out: list[Frame]) -> None:
        buf = self.buffer
        buf += chunk
        pos = 0
        while pos < len(buf):
            if self._head is None:
                match = _HEADER.match(buf, pos)
                if match is None:
                    self._check_prefix(buf, pos)
                    break
                txnr, command, length = int(match[1]), match[2].decode(), int(match[3])
                if (txnr == 0 and command != "serverclose") or txnr > MAX_TXNR:
                    raise RelpProtocolError(f"transaction number {txnr} out of range")
                if length > self.max_data and not self.truncate:
                    raise RelpProtocolError(f"{command} frame of {length} bytes exceeds {self.max_data}")
                pos = match.end()
                self._head, self._left = (txnr, command, length), length
                self._data.clear()
                if match[4] == b"\n":  # no data: the trailer is already read
                    if length:
                        raise RelpProtocolError(f"{command} frame announces {length} bytes but has none")
                    out.append(Frame(txnr, command, b""))
                    self._head = None
                    continue
                self._trailer = length == 0
            if self._left:
                take = min(self._left, len(buf) - pos)
                room = self.max_data - len(self._data)
                if room > 0:
                    self._data += buf[pos : pos + min(take, room)]
                pos += take
                self._left -= take
                if self._left:
                    break
                self._trailer = True
            if self._trailer:
                if pos >= len(buf):
                    break
                if buf[pos] != 0x0A:
                    head = self._head
                    assert head is not None
                    raise RelpProtocolError(
                        f"{head[1]} frame {head[0]}: no LF after its {head[2]} data bytes"
                    )
                pos += 1
                txnr, command, length = self._head  # type: ignore[misc]
                cut = length if length > self.max_data else 0
                out.append(Frame(txnr, command, bytes(self._data), cut))
                self._head, self._trailer = None, False
                self._data.clear()
        del buf[:pos]

    @staticmethod
    def _check_prefix(buf: bytearray, pos: int) -> None:
        pending = bytes(buf[pos : pos + _HEADER_MAX + 1])
        if len(pending) > _HEADER_MAX or b"\n" in pending or not _PREFIX.fullmatch(pending):
            shown = pending[:40].decode("ascii", "backslashreplace")
            raise RelpProtocolError(f"not a RELP frame header: {shown!r}")


def parse_offers(data: bytes) -> dict[str, str]:
    """``open``'s data: one ``name=value`` offer per line (``relp_version=0``, ``commands=syslog``)."""
    offers = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        name, _, value = line.partition("=")
        if name.strip():
            offers[name.strip()] = value.strip()
    return offers
