"""The manifest: what a generated scenario contains, saved as ``manifest.json``.

Each incident names the alert category a detector should raise (core.alert.CATEGORIES),
the host, the key entity (source IP, user, unit, bridge, path, project...), its time span
and the files and marker strings its lines carry, so tests and benchmarks can check
detections against ground truth.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"


def _iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class Incident:
    category: str  # the alert category expected (core.alert.CATEGORIES)
    host: str
    entity: str  # the key entity: source IP, user name, unit, bridge, path, project id...
    start: str  # ISO 8601 UTC
    end: str
    description: str
    files: list[str] = field(default_factory=list)  # '<host>/<file>' holding its lines
    markers: list[str] = field(default_factory=list)  # substrings its lines contain
    explained: bool = False  # e.g. an AIDE change preceded by a package upgrade

    @classmethod
    def span(
        cls,
        category: str,
        host: str,
        entity: str,
        start_ms: int,
        end_ms: int,
        description: str,
        files: list[str],
        markers: list[str],
        explained: bool = False,
    ) -> Incident:
        return cls(
            category,
            host,
            entity,
            _iso(start_ms),
            _iso(end_ms),
            description,
            sorted(set(files)),
            markers,
            explained,
        )


@dataclass(slots=True)
class Manifest:
    seed: int
    start: str
    end: str
    lines: int = 0  # lines written, all files
    files: dict[str, int] = field(default_factory=dict)  # '<host>/<file>' -> lines
    incidents: list[Incident] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, out_dir: Path) -> Path:
        path = out_dir / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Manifest:
        if path.is_dir():
            path = path / MANIFEST_NAME
        data = json.loads(path.read_text(encoding="utf-8"))
        incidents = [Incident(**item) for item in data.pop("incidents", [])]
        return cls(**data, incidents=incidents)

    def by_category(self, category: str) -> list[Incident]:
        return [i for i in self.incidents if i.category == category]
