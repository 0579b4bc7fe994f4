"""Helpers shared by the test suite and by plugin authors: events, clocks, parser vectors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from stackwatch.core.clock import FakeClock
from stackwatch.core.event import Event, Initiator, Target, field_value

__all__ = ["FakeClock", "ParserVector", "check_parser_vector", "load_parser_vectors", "make_event"]

VECTORS_DIR = Path(__file__).parent / "parsers" / "vectors"


def corpus_dir() -> Path:
    """The shared public corpus, read in place: ``$STACKWATCH_CORPUS``, else ``../shared/corpus``
    beside the checkout (where CI lays it)."""
    import os

    env = os.environ.get("STACKWATCH_CORPUS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "corpus"


def make_event(**fields: Any) -> Event:
    """An Event with sensible defaults; ``initiator``/``target`` may be given as dicts."""
    now = fields.pop("time", None) or datetime(2026, 1, 1, tzinfo=UTC)
    if isinstance(fields.get("initiator"), dict):
        fields["initiator"] = Initiator(**fields["initiator"])
    if isinstance(fields.get("target"), dict):
        fields["target"] = Target(**fields["target"])
    fields.setdefault("received", now)
    fields.setdefault("kind", "test")
    return Event(time=now, **fields)


@dataclass(frozen=True)
class ParserVector:
    """One parser test vector: input text, optional context, and expected event fields."""

    file: str
    name: str
    input: str
    host: str
    year: int | None
    events: list[dict[str, Any]]  # expected fields per event, in order (prefix of the output)
    count: int | None  # expected number of events, when given

    def __str__(self) -> str:
        return f"{Path(self.file).stem}: {self.name}"


def load_parser_vectors(directory: Path = VECTORS_DIR) -> list[ParserVector]:
    vectors: list[ParserVector] = []
    for path in sorted(directory.glob("*.yaml")):
        for item in yaml.safe_load(path.read_text()) or []:
            expected = item.get("events") or ([item["expect"]] if "expect" in item else [])
            vectors.append(ParserVector(
                file=str(path), name=item["name"], input=item["input"], host=item.get("host", ""),
                year=item.get("year"), events=expected, count=item.get("count"),
            ))
    return vectors


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def check_parser_vector(vector: ParserVector) -> list[Event]:
    """Parse the vector's input and assert every expected field; returns the events."""
    from stackwatch.parsers.framing import parse_text

    events = parse_text(vector.input, host=vector.host, origin="vector", year=vector.year)
    if vector.count is not None:
        assert len(events) == vector.count, f"{vector}: {len(events)} events, expected {vector.count}"
    assert len(events) >= len(vector.events), f"{vector}: only {len(events)} events"
    for index, (event, expected) in enumerate(zip(events, vector.events, strict=False)):
        for path, want in expected.items():
            got = _comparable(field_value(event, path))
            if isinstance(want, datetime):
                want = want.isoformat()
            assert got == want, f"{vector}: event {index}: {path} = {got!r}, expected {want!r}"
    return events
