"""cadf: every JSON example and oslo log line in corpus/cadf/** goes through the parsers."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.parsers.cadf import normalize_cadf, parse_time
from stackwatch.parsers.framing import parse_text

_RST_BLOCK = re.compile(r"^\.\. code(?:-block)?::[^\n]*\n((?:[ \t]*\n|[ \t]+[^\n]*\n)+)", re.MULTILINE)
_MD_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix == ".rst":
        return [textwrap.dedent(block).strip() for block in _RST_BLOCK.findall(text)]
    return [block.strip() for block in _MD_BLOCK.findall(text)]


def json_examples(corpus: Path) -> list[tuple[str, str]]:
    """(where, text) for every JSON document written in the cadf docs: whole code blocks that
    start with '{', and the one-line documents inside log excerpts."""
    found = []
    for path in sorted((corpus / "cadf").rglob("*")):
        if path.suffix not in (".rst", ".md"):
            continue
        for index, block in enumerate(_blocks(path)):
            where = f"{path.relative_to(corpus)}#{index}"
            if block.startswith("{"):
                found.append((where, block))
            else:
                found.extend((where, line) for line in block.splitlines() if line.startswith("{"))
    return found


def _decodes(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_the_corpus_has_json_examples(corpus):
    examples = json_examples(corpus)
    assert len(examples) >= 20
    assert sum(_decodes(text) for _, text in examples) >= 15


def test_every_json_example_parses_or_is_kept_unparsed(corpus):
    for where, text in json_examples(corpus):
        events = parse_text(text)
        assert events, where
        if _decodes(text):
            assert all(e.kind in ("notification", "cadf", "json") for e in events), where
            assert len(events) == 1, where
        else:  # doc placeholders (<resource_id>), // comments, trailing commas, one '}' too many
            assert events[0].kind == "unparsed", where
            assert events[0].raw == text, where


def test_keystone_auth_failure_examples_carry_the_contract_fields(corpus):
    checked = 0
    for where, text in json_examples(corpus):
        # references.md prints its keystone lines with one '}' too many: take the leading document.
        try:
            document, _ = json.JSONDecoder().raw_decode(text)
        except ValueError:
            continue
        if not isinstance(document, dict) or document.get("event_type") != "identity.authenticate":
            continue
        if document["payload"].get("outcome") != "failure":
            continue
        (event,) = parse_text(json.dumps(document))
        initiator = document["payload"]["initiator"]
        assert event.kind == "notification", where
        assert event.service == "keystone", where
        assert event.action in ("authenticate", "password.expired"), where
        assert event.outcome == "failure", where
        assert event.initiator.source_ip == initiator["host"]["address"], where
        assert event.initiator.id == initiator.get("user_id", initiator["id"]), where
        assert event.initiator.name == initiator.get("username"), where
        assert event.request_id == initiator.get("request_id"), where
        assert event.target.id == document["payload"]["target"]["id"], where
        assert event.observer == "service/security", where
        assert event.attrs["event_type"] == "identity.authenticate", where
        checked += 1
    assert checked >= 4  # expired + invalid password (keystone docs), twice in references.md


def test_partial_password_hash_and_reason(corpus):
    docs = [json.loads(text) for _, text in json_examples(corpus) if _decodes(text)]
    by_reason = {d["payload"].get("reason", {}).get("reasonCode"): d for d in docs
                 if isinstance(d.get("payload"), dict) and d.get("event_type") == "identity.authenticate"}
    (expired,) = parse_text(json.dumps(by_reason[401]))
    assert expired.action == "password.expired"
    assert expired.attrs["reason_code"] == "401"
    invalid = next(d for d in docs if "attachments" in d.get("payload", {}))
    (event,) = parse_text(json.dumps(invalid))
    assert event.attrs["partial_password_hash"] == "EpDKTqHklwreBBXhXv81jlYkYNfcDYj2XBrKrMGrjac"


def test_log_driver_lines_in_the_canonical_doc_parse(corpus):
    text = (corpus / "cadf/canonical-openstack/api-auditing.rst").read_text()
    lines = [line.strip() for line in text.splitlines() if re.match(r"\s+\d{4}-\d\d-\d\dT", line)]
    assert len(lines) == 3
    events = parse_text("\n".join(lines))
    assert [e.attrs["event_type"] for e in events] == [
        "audit.http.request", "audit.http.response", "identity.user.updated"]
    assert [e.service for e in events] == ["nova-api", "nova-api", "keystone"]
    assert [e.outcome for e in events] == ["pending", "success", "success"]
    assert all(e.kind == "notification" for e in events)


@pytest.mark.parametrize(("action", "expected"), [
    ("deleted.project", ("deleted.project", "project")),
    ("created.user", ("created.user", "user")),
    ("updated.domain", ("updated.domain", "domain")),
    ("read/list", ("read/list", "service/compute/servers")),
])
def test_normalize_cadf_actions(action, expected):
    fields = normalize_cadf({"typeURI": "x", "action": action, "outcome": "success",
                             "target": {"typeURI": "service/compute/servers", "id": "t"}})
    assert (fields["action"], fields["target"].type) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-02 08:00:00.009764", datetime(2026, 3, 2, 8, 0, 0, 9764, tzinfo=UTC)),  # oslo timestamp
    ("2026-03-02T08:00:00.009764+0000", datetime(2026, 3, 2, 8, 0, 0, 9764, tzinfo=UTC)),  # CADF eventTime
    ("2026-03-02T09:00:00+0100", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
    ("2026-03-02", datetime(2026, 3, 2, tzinfo=UTC)),  # a date alone ignores an appended offset
    ("20260302T080000", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
])
def test_parse_time_is_utc_aware(text, expected):
    parsed = parse_time(text)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [None, "", "yesterday", 1700000000, "2026-13-02"])
def test_parse_time_gives_none_for_unusable_values(value):
    assert parse_time(value) is None


def test_normalize_cadf_reads_non_text_values_as_before():
    """The str fast paths keep ``_text``'s rules for everything else: ints become text, empty
    strings and containers count as absent, and a missing username falls back to ``name``."""
    fields = normalize_cadf({
        "typeURI": "x", "action": "authenticate", "outcome": 1, "id": 42, "eventType": "",
        "initiator": {"username": "", "name": "bob", "id": 7, "user_id": {}, "project_id": 9,
                      "domain_id": "", "user_domain_id": "d1", "request_id": [],
                      "host": {"address": 3232235777, "agent": ""}},
        "target": {"typeURI": 5, "id": ""},
        "observer": {"id": 11, "typeURI": ""},
        "request_id": "req-1",
    }, "identity.authenticate")
    initiator = fields["initiator"]
    assert (initiator.name, initiator.id, initiator.project, initiator.domain) == ("bob", "7", "9", "d1")
    assert (initiator.source_ip, initiator.user_agent) == ("3232235777", None)
    assert (fields["target"].type, fields["target"].id) == ("5", None)
    assert fields["outcome"] == "unknown" and fields["request_id"] == "req-1"
    assert fields["observer"] == "11" and fields["attrs"]["observer_id"] == "11"
    assert fields["attrs"]["cadf_id"] == "42" and "cadf_event_type" not in fields["attrs"]
    assert fields["service"] == "keystone" and fields["action"] == "authenticate"


def test_normalize_cadf_tolerates_sub_objects_that_are_not_mappings():
    fields = normalize_cadf({"typeURI": "x", "action": "read/list", "outcome": "success",
                             "initiator": "someone", "target": ["t"], "observer": None, "reason": "r"})
    assert fields["initiator"].name is None and fields["target"].type is None
    assert fields["observer"] is None and "reason_code" not in fields["attrs"]
