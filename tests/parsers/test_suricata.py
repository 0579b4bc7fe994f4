"""Suricata: every eve.json example of the upstream docs parses; fast.log sniffing is strict."""

from __future__ import annotations

import json
import re

import pytest

from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.suricata import FAST_PARSER, MESSAGE_PARSER, from_json

RST_FILES = ["eve-json-format.rst", "eve-json-examplesjq.rst"]


def eve_examples(text: str) -> list[dict]:
    """The JSON literal blocks ('::' then an indented block) that are whole eve documents."""
    found = []
    for match in re.finditer(r"::\n\n((?:[ \t]+.*\n|\n)+)", text):
        try:
            document = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(document, dict) and "event_type" in document:
            found.append(document)
    return found


@pytest.mark.parametrize("name", RST_FILES)
def test_every_eve_example_in_the_docs_parses(corpus, name):
    documents = eve_examples((corpus / "av-ids/suricata" / name).read_text())
    for document in documents:
        events = from_json(document, json.dumps(document), ParseContext(host="ids1"))
        assert events is not None and len(events) == 1
        event = events[0]
        assert event.kind == "suricata"
        assert event.action == f"ids.{document['event_type']}"
        assert event.time.tzinfo is not None
        if document["event_type"] == "alert":
            assert event.attrs["signature_id"] == document["alert"]["signature_id"]
            assert event.initiator.source_ip == document["src_ip"]


def test_the_format_doc_has_several_eve_examples(corpus):
    assert len(eve_examples((corpus / "av-ids/suricata/eve-json-format.rst").read_text())) >= 5


def test_json_without_event_type_is_not_eve():
    assert from_json({"timestamp": "2024-01-01T00:00:00Z", "message": "x"}, "{}", ParseContext()) is None


@pytest.mark.parametrize("line", [
    "10/05/2023-10:01:02.123456  [**] [1:1:1] X [**] [Priority: 1] {TCP} 1.1.1.1:1 -> 2.2.2.2:2",
    "10/20-20:43:32.334621  [**] [1:10000001:0] /etc/passwd test [**] [Priority: 0] {TCP} a:1 -> b:2",
])
def test_fast_sniff_accepts_fast_lines(line):
    assert FAST_PARSER.sniff(line)


@pytest.mark.parametrize("line", [
    "Oct  5 10:01:02 ids1 suricata[2100]: [1:2010935:3] ET POLICY x [Priority: 2]",
    "2017-05-16 00:00:00.008 25746 INFO nova.compute [-] [**] [x]",
    "10/05/2023 some other tool",
])
def test_fast_sniff_refuses_other_lines(line):
    assert not FAST_PARSER.sniff(line)


def test_ipv6_endpoints_lose_their_brackets():
    fields = MESSAGE_PARSER.parse_message(
        "suricata",
        "[1:1:1] X [Classification: Misc] [Priority: 3] {UDP} [2001:db8::1]:53 -> [2001:db8::2]:5353")
    assert fields["initiator"].source_ip == "2001:db8::1"
    assert fields["target"].id == "2001:db8::2"
    assert fields["severity"] == "warning"


def test_non_alert_suricata_message_says_nothing():
    assert MESSAGE_PARSER.parse_message("suricata", "engine started.") is None
