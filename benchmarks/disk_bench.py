"""Where a store's disk bytes go: ``python -m benchmarks.disk_bench DATA --input CORPUS [--json]``.

DATA is a data folder as a run left it (e.g. ``stackwatch analyze CORPUS --data DATA --jobs 1``);
CORPUS the input it was made from (files or folders; ``.gz`` counted decompressed), for the
bytes a line and the ratio to the input. Reads every SQLite file of the folder read-only with
``dbstat`` (pages of each table and index, free pages), and adds the WAL and shared-memory
files and any other file left beside them. Prints a table per B-tree and a summary per
component (what docs/store.md's disk budget names).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Each B-tree's component, by name (what is not named here is "other").
COMPONENTS: Final = {
    "blocks": "blocks (records + digests)", "blocks_first_seq": "blocks (records + digests)",
    "events": "narrow rows",
    "events_time": "narrow rows' indexes", "events_source_time": "narrow rows' indexes",
    "events_logins": "narrow rows' indexes", "events_audit": "narrow rows' indexes",
    "login_attempts": "login attempts + rollups", "login_attempts_ip": "login attempts + rollups",
    "login_attempts_account": "login attempts + rollups", "login_attempts_time": "login attempts + rollups",
    "attempt_minutes": "login attempts + rollups", "event_counts": "login attempts + rollups",
    "event_keys": "search index: keys",
    "events_fts_data": "search index: full text", "events_fts_idx": "search index: full text",
    "events_fts_docsize": "search index: full text", "events_fts_config": "search index: full text",
}


@dataclass(frozen=True, slots=True)
class Part:
    file: str
    name: str
    component: str
    size: int


def input_size(paths: Iterable[Path]) -> tuple[int, int]:
    """(bytes, lines) of the input: every file under the paths, ``.gz`` decompressed."""
    size = lines = 0
    for path in _files(paths):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            last = b"\n"
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            lines += last != b"\n"  # a last line without its newline
    return size, lines


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files ``analyze`` reads: in a folder, not hidden ones nor a scenario's manifest.json
    (pipeline/reader.py skips them too)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                              and p.name != "manifest.json")
        else:
            yield path


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(16) == b"SQLite format 3\x00"


def parts(data: Path) -> list[Part]:
    """Every B-tree of every SQLite file in ``data``, its free pages, its WAL and shm, and the
    other files (by size on disk as ``ls`` gives it)."""
    found: list[Part] = []
    seen: set[Path] = set()
    for path in sorted(p for p in data.iterdir() if p.is_file()):
        if path in seen or not _is_sqlite(path):
            continue
        # Sizes first: opening a WAL database makes its -wal and -shm if missing. With no WAL
        # left there is nothing but the file to read, so it is opened immutable (creates none).
        sides = {suffix: path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")}
        left = {side: side.stat().st_size for side in sides.values() if side.exists()}
        flag = "" if left else "&immutable=1"
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro{flag}", uri=True)
        try:
            for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
                found.append(Part(path.name, name, COMPONENTS.get(name, "other tables"), int(size)))
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0] * page
            found.append(Part(path.name, "(free pages)", "free pages, WAL, shm", int(free)))
        finally:
            conn.close()
        seen.add(path)
        for side, size in left.items():
            found.append(Part(side.name, "(file)", "free pages, WAL, shm", size))
        seen.update(sides.values())
    for path in sorted(p for p in data.iterdir() if p.is_file() and p not in seen):
        found.append(Part(path.name, "(file)", "other files", path.stat().st_size))
    return found


def report(data: Path, size: int, lines: int) -> dict[str, object]:
    found = parts(data)
    total = sum(p.size for p in found)
    components: dict[str, int] = {}
    for part in found:
        components[part.component] = components.get(part.component, 0) + part.size
    return {"data": str(data), "input_bytes": size, "lines": lines, "input_bytes_a_line": size / lines,
            "total_bytes": total, "bytes_a_line": total / lines, "ratio": total / size,
            "components": {name: {"bytes": n, "bytes_a_line": n / lines} for name, n in
                           sorted(components.items(), key=lambda item: -item[1])},
            "trees": [{"file": p.file, "name": p.name, "bytes": p.size, "bytes_a_line": p.size / lines}
                      for p in sorted(found, key=lambda p: -p.size) if p.size]}


def _print(figures: dict[str, object]) -> None:
    lines = figures["lines"]
    print(f"input: {figures['input_bytes']:,} bytes, {lines:,} lines, "
          f"{figures['input_bytes_a_line']:.1f} bytes a line")
    print(f"store: {figures['total_bytes']:,} bytes, {figures['bytes_a_line']:.1f} bytes a line, "
          f"{figures['ratio']:.3f}x the input\n")
    print("| component | bytes | bytes a line |\n|---|---:|---:|")
    for name, row in figures["components"].items():  # type: ignore[attr-defined]
        print(f"| {name} | {row['bytes']:,} | {row['bytes_a_line']:.1f} |")
    print("\n| file | B-tree | bytes | bytes a line |\n|---|---|---:|---:|")
    for row in figures["trees"]:  # type: ignore[attr-defined]
        print(f"| {row['file']} | {row['name']} | {row['bytes']:,} | {row['bytes_a_line']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the data folder")
    parser.add_argument("--input", type=Path, nargs="+", required=True,
                        help="the input the store was made from")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    args = parser.parse_args()
    size, lines = input_size(args.input)
    figures = report(args.data, size, lines)
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        _print(figures)


if __name__ == "__main__":
    main()
