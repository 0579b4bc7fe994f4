"""Compact values for the search index's ``event_keys``: a value in one of a few canonical
shapes is stored as a short BLOB, every other value as its text.

On the benchmark corpus the keys were 61 bytes a line, most of it request ids
(``req-`` + a UUID, 40 characters) and keystone user ids (32 hex digits): packed, 17 bytes
each, and the keys take 41 bytes a line. IPv4 addresses (11 characters) are not packed: it
saved 3 bytes a line more for twice the indexing CPU of the rest (the Python call per value
is the cost, ~1 µs; docs/store.md, "The disk bytes, measured").

The encoding is one-to-one and the same for every field, so exact matching keeps its
meaning: a search value is packed the same way before it is compared (``pack_key``), and a
value not in a canonical shape (``REQ-...`` or hex in capitals, ``req-7``) stays text on
both sides. SQLite orders every TEXT before every
BLOB, so a text range never meets a packed value and the reverse; a prefix search asks both:
the text range, and the BLOB ranges of the packed values whose text starts with the prefix
(``prefix_ranges``), which the order-preserving encoding keeps contiguous.
"""

from __future__ import annotations

import sqlite3
from typing import Final

# One tag byte leads each packed value, so two shapes of the same bytes never collide.
UUID: Final = 1  # 8-4-4-4-12 lowercase hex digits
HEX32: Final = 2  # 32 lowercase hex digits (keystone's ids)
REQUEST: Final = 3  # "req-" + a UUID (oslo's request ids)

_UUID_TEXT: Final = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
_HEX_SHAPES: Final = ((UUID, _UUID_TEXT), (HEX32, "x" * 32), (REQUEST, "req-" + _UUID_TEXT))
"""Each hex shape as a template: ``x`` a lowercase hex digit, anything else itself."""
_TAGS: Final = {36: bytes([UUID]), 32: bytes([HEX32]), 40: bytes([REQUEST])}
_HEXDIGITS: Final = frozenset("0123456789abcdef")

SQL_FUNCTION: Final = "stackwatch_pack_key"
"""The SQL name of ``pack_key`` on the connections that fill the index (``register``)."""
PACKED_LENGTHS: Final = f"({', '.join(str(size) for size in _TAGS)})"
"""The only text lengths ``pack_key`` packs: SQL calls it for these alone (a Python call a
value is its cost), as the SQL list ``length(value) IN PACKED_LENGTHS``."""


def pack_key(value: str) -> str | bytes:
    """``value`` as ``event_keys`` holds it: a tag byte and the packed bytes for the canonical
    shapes above, else the text unchanged."""
    # No regex: checked by parsing and rendering back (half the CPU; it runs once a key).
    size = len(value)
    if size == 32:
        digits = value
    elif size == 36 or (size == 40 and value.startswith("req-")):
        uuid = value[-36:]
        if uuid[8] != "-" or uuid[13] != "-" or uuid[18] != "-" or uuid[23] != "-":
            return value
        digits = uuid.replace("-", "")
    else:
        return value
    try:
        packed = bytes.fromhex(digits)
    except ValueError:
        return value
    # fromhex also takes capitals and skips spaces: only the canonical text renders back equal;
    # dashes past a UUID's four were dropped with them (two texts would share one packing)
    return _TAGS[size] + packed if len(packed) == 16 and packed.hex() == digits else value


def register(conn: sqlite3.Connection) -> None:
    """Make ``pack_key`` callable from SQL on ``conn`` (the indexing ``INSERT ... SELECT``)."""
    conn.create_function(SQL_FUNCTION, 1, pack_key, deterministic=True)


def prefix_ranges(prefix: str) -> list[tuple[bytes, bytes]]:
    """The ``[low, high)`` BLOB ranges holding exactly the packed values whose text starts
    with ``prefix`` (none when no canonical shape can start so)."""
    ranges = [_hex_range(tag, template, prefix) for tag, template in _HEX_SHAPES]
    return [r for r in ranges if r is not None]


def _hex_range(tag: int, template: str, prefix: str) -> tuple[bytes, bytes] | None:
    if len(prefix) > len(template):
        return None
    digits = []
    for char, expected in zip(prefix, template, strict=False):
        if expected == "x":
            if char not in _HEXDIGITS:
                return None
            digits.append(char)
        elif char != expected:
            return None
    free = 4 * (32 - len(digits))  # bits the prefix leaves open
    start = int("".join(digits) or "0", 16)
    return _span(tag, start << free, (start + 1) << free, 16)


def _span(tag: int, low: int, high: int, size: int) -> tuple[bytes, bytes]:
    """The range as BLOBs; a high end past the shape's last value is the next tag alone, which
    sorts after every value of this one."""
    end = bytes([tag + 1]) if high >> (8 * size) else bytes([tag]) + high.to_bytes(size, "big")
    return bytes([tag]) + low.to_bytes(size, "big"), end
