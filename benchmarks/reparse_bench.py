"""Raw-only records, measured: ``python -m benchmarks.reparse_bench CORPUS [CORPUS ...]``.

What the next record format (issue #16, docs/store.md "Next: records without their parse")
would hold and cost, against today's format 2 record bytes, on the same events in one run:

* bytes per line of blocks (zstd level 1, 128 KiB blocks: ``integrity.blocks.BlockEncoder``,
  closed as ``sqlite_blocks._blocks`` closes them) of today's records (raw line + normalized
  fields, ``narrow.NarrowEncoder``) and of raw-only records (the same ``RECORD_HEAD`` framing,
  the normalized array replaced by the lean header of store/reparse.py: time, host, service,
  severity, kind, ref, parser, nth, truncated, clamped; a later event of a multi-event record
  holds no raw of its own), and the raw lines alone (the floor);
* encode CPU per record both ways (the record bytes; zstd apart);
* reading records back: today's ``records.record_event`` against decoding the header and
  ``reparse``; a page of 100 hits (random records, each in its own block: a page spread over
  time) and a full scan (every block, every record), scaled to 1M records.

Times are CPU seconds of the process (``time.process_time``): the VM is shared. Run it once
compiled and once with STACKWATCH_PURE_PYTHON=1 for the pure-Python figures.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from stackwatch import accel
from stackwatch.core.event import Event
from stackwatch.pipeline.reader import discover
from stackwatch.store import reparse_check as rc
from stackwatch.store.chain import MAGIC, RECORD_HEAD, decode_record_bytes
from stackwatch.store.integrity import blocks as codec
from stackwatch.store.integrity.records import record_event
from stackwatch.store.reparse import RawHeader, reparse
from stackwatch.store.reparse_check import Captured, capture_inputs
from stackwatch.store.rows import EPOCH

BATCH = 1_000
PAGE = 100
SCAN = 1_000_000


def today_records(events: Sequence[Event]) -> list[bytes]:
    """Format 2 record bytes, as the writer's encoder makes them (narrow rows and messages too)."""
    return rc.writer_records(events, BATCH)


def raw_records(items: Sequence[Captured]) -> list[bytes]:
    """Raw-only record bytes: RECORD_HEAD, the record's raw (once a record), the lean header."""
    dumps, pack, magic = orjson.dumps, RECORD_HEAD.pack, MAGIC
    epoch, us = EPOCH, timedelta(microseconds=1)
    out: list[bytes] = []
    add = out.append
    for seq, (e, raw, h) in enumerate(items, 1):
        head = dumps(((e.time - epoch) // us, e.host, e.service, e.severity, e.kind, h.ref, h.parser, h.nth,
                      h.truncated, h.clamped))
        body = raw if h.nth == 0 else b""
        o = e.origin.encode()
        add(pack(magic, seq, (e.received - epoch) // us, len(body), len(head), len(o)) + body + head + o)
    return out


PACKED_HEAD = struct.Struct(">4sQqqIIIBBBHIBI")
"""A packed raw-only record's head: magic, seq, received, time, source id, ref prefix id (the
input: its origin and ref prefix), line number, severity, kind, parser (ids), nth, truncated,
clamped, raw length; then the raw bytes. The id tables (sources, inputs, names) are per store."""


def packed_records(items: Sequence[Captured]) -> list[bytes]:
    """Raw-only records with an interned binary header (what the JSON header could shrink to)."""
    pack, magic = PACKED_HEAD.pack, MAGIC
    epoch, us = EPOCH, timedelta(microseconds=1)
    ids: dict[Any, int] = {}
    intern = ids.setdefault
    out: list[bytes] = []
    add = out.append
    for seq, (e, raw, h) in enumerate(items, 1):
        prefix, _, lineno = h.ref.rpartition(":")
        line = int(lineno) if lineno.isdigit() else 0
        if not line:
            prefix = h.ref
        body = raw if h.nth == 0 else b""
        add(pack(magic, seq, (e.received - epoch) // us, (e.time - epoch) // us,
                 intern((e.host, e.service), len(ids)), intern((e.origin, prefix), len(ids)), line,
                 intern(e.severity, len(ids)) & 255, intern(e.kind, len(ids)) & 255,
                 intern(h.parser, len(ids)) & 255, h.nth, h.truncated, h.clamped, len(body)) + body)
    return out


def read_raw(record: bytes, raw: bytes | None = None) -> Event:
    """The event of a raw-only record (``raw``: its record's, for a later event of a record)."""
    fields = decode_record_bytes(record)
    (time_us, host, service, severity, kind, ref, parser, nth, truncated,
     clamped) = orjson.loads(fields.normalized)
    header = RawHeader(time=time_us, received=fields.received_us, host=host, service=service,
                       severity=severity, kind=kind, origin=fields.origin, ref=ref, parser=parser, nth=nth,
                       truncated=truncated, clamped=clamped)
    return reparse(fields.raw if raw is None else raw, header)


def blocks(records: Sequence[bytes]) -> list[list[bytes]]:
    """``records`` cut into blocks as the writer cuts them (closed at BLOCK_BYTES)."""
    out: list[list[bytes]] = []
    start = size = 0
    for n, rec in enumerate(records):
        size += len(rec)
        if size >= codec.BLOCK_BYTES:
            out.append(list(records[start:n + 1]))
            start, size = n + 1, 0
    if start < len(records):
        out.append(list(records[start:]))
    return out


def _cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def measure(corpus: Path, seed: int = 7) -> dict[str, Any]:
    inputs = discover([str(corpus)])
    input_bytes = sum(source.size for source in inputs)
    # in time order, as analyze's merge hands them to the store: the files' records interleave,
    # which compresses worse than file order (66 bytes a line of today's blocks in file order on
    # the 100k corpus, against 112 measured in the store)
    items = sorted(capture_inputs([str(corpus)]), key=lambda item: item.event.time)
    events = [item.event for item in items]
    lines = sum(len(source.path.read_bytes().splitlines()) for source in inputs if source.path is not None)
    n = len(items)
    result: dict[str, Any] = {"corpus": str(corpus), "lines": lines, "records": n, "input_bytes": input_bytes,
                              "bytes_per_line_input": input_bytes / lines,
                              "multi_event_records": sum(item.header.nth > 0 for item in items)}
    encode_today, today = _cpu(lambda: today_records(events))
    encode_raw, raw = _cpu(lambda: raw_records(items))
    encode_packed, packed = _cpu(lambda: packed_records(items))
    plain = [item.raw + b"\n" for item in items if item.header.nth == 0]
    encoder = codec.BlockEncoder()
    for name, records, encode in (("today", today, encode_today), ("raw_only", raw, encode_raw),
                                  ("raw_only_packed", packed, encode_packed),
                                  ("raw_lines_alone", plain, None)):
        cut = blocks(records)
        zstd_cpu, compressed = _cpu(lambda cut=cut: [encoder.encode_unchained(b)[0] for b in cut])
        size = sum(map(len, compressed))
        result[name] = {
            "record_bytes_per_line": sum(map(len, records)) / lines,
            "block_bytes_per_line": size / lines,
            "ratio_to_input": size / input_bytes,
            "blocks": len(cut),
            "encode_us_per_record": None if encode is None else encode / n * 1e6,
            "zstd_us_per_record": zstd_cpu / n * 1e6,
        }
        if name in ("today", "raw_only"):  # read back below (the packed one reads as raw_only)
            result[name]["_compressed"] = compressed
    # reading back: a page of 100 random hits, each in its own block, and the whole store
    rng = random.Random(seed)
    page = rng.sample(range(n), PAGE)
    first_raw = {}
    for index, item in enumerate(items):
        if item.header.nth == 0:
            first_raw[index] = item.raw
    record_raw = [item.raw if item.header.nth else None for item in items]
    for name, records, read in (("today", today, lambda r, i: record_event(r)[1]),
                                ("raw_only", raw, lambda r, i: read_raw(r, record_raw[i]))):
        compressed = result[name].pop("_compressed")
        cut = blocks(records)
        starts, at = [], 0
        for block in cut:
            starts.append(at)
            at += len(block)
        block_of = [b for b, block in enumerate(cut) for _ in block]
        cpu, _ = _cpu(lambda compressed=compressed, cut=cut, read=read, records=records, block_of=block_of: [
            (codec.records(compressed[block_of[i]]), read(records[i], i)) for i in page])
        decompress, _ = _cpu(lambda compressed=compressed: [codec.records(data) for data in compressed])
        scan, got = _cpu(lambda compressed=compressed, read=read: [
            read(rec, i) for i, rec in enumerate(r for data in compressed for r in codec.records(data))])
        result[name]["page_of_100_ms"] = cpu * 1e3
        result[name]["decompress_us_per_record"] = decompress / n * 1e6
        result[name]["read_us_per_record"] = (scan - decompress) / n * 1e6
        result[name]["scan_1m_s"] = scan / n * SCAN
        assert len(got) == n
    # the raw-only read gives today's events: the same record bytes for every one
    again = [read_raw(rec, record_raw[i]) for i, rec in enumerate(raw)]
    result["identical"] = today_records(again) == today
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    mode = f"compiled {len(accel.compiled_modules())} modules" if accel.compiled_modules() else "pure Python"
    results = {"mode": mode, "corpora": [measure(corpus) for corpus in args.corpora]}
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
