"""json_record: decoding, shape dispatch, pretty-printed documents and their limits."""

from __future__ import annotations

import json

import pytest

from stackwatch.parsers.framing import parse_text
from stackwatch.parsers.json_record import MAX_JSON_LINES, PARSER, brace_delta


@pytest.mark.parametrize(("line", "delta"), [
    ("{", 1),
    ("}", -1),
    ('  "a": {"b": [1, 2]},', 0),
    ('  "a": "}{]["', 0),
    ('  "a": "\\"}", "b": {', 1),
    ("", 0),
])
def test_brace_delta_ignores_brackets_in_strings(line, delta):
    assert brace_delta(line) == delta


def test_pretty_document_with_nested_objects_is_one_record():
    doc = {"event_type": "x.y", "publisher_id": "a.b", "payload": {"k": [{"v": "}"}]}, "priority": "INFO"}
    text = json.dumps(doc, indent=4) + "\n" + json.dumps(doc, indent=2)
    events = parse_text(text)
    assert [e.kind for e in events] == ["notification", "notification"]
    assert events[0].raw == json.dumps(doc, indent=4)


def test_an_unclosed_pretty_document_stops_at_the_line_cap():
    lines = ["{", *(f'  "k{i}": {i},' for i in range(MAX_JSON_LINES + 10))]
    events = parse_text("\n".join(lines))
    assert events[0].kind == "unparsed"
    assert len(events[0].raw.splitlines()) == MAX_JSON_LINES


def test_a_single_line_document_never_continues():
    assert not PARSER.continues('{"a": 1}', '  "b": 2')


def test_truncated_document_is_unparsed_with_raw_kept():
    (event,) = parse_text('{"oslo.version": "2.0", "oslo.message": "{\\"event_type')
    assert event.kind == "unparsed"
    assert event.raw == '{"oslo.version": "2.0", "oslo.message": "{\\"event_type'


def test_envelope_whose_inner_message_is_broken_is_unparsed():
    (event,) = parse_text('{"oslo.version": "2.0", "oslo.message": "{not json"}')
    assert event.kind == "unparsed"


def test_generic_event_message_is_short():
    (event,) = parse_text(json.dumps({"blob": "x" * 5000}))
    assert event.kind == "json"
    assert len(event.message) <= 300
