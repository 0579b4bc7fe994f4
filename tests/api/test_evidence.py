"""Evidence as an operator reads it: records parsed again into fields (a CADF notification
decoded, not escaped JSON) and the search that finds every event behind an alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from stackwatch.api.evidence import evidence_fields, search_link, search_terms
from stackwatch.core.alert import Alert, Evidence
from tests.servetools import keystone_auth_payload

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _envelope(payload: dict) -> str:  # type: ignore[type-arg]
    """One oslo.messaging v2 notification, as keystone publishes it on the bus."""
    message = {"event_type": "identity.authenticate", "payload": payload, "publisher_id": "identity.ctl1",
               "priority": "INFO", "message_id": "5f3a1b1e-1111-4c6e-9a55-0d7c2b9f0a01",
               "timestamp": "2026-03-02 08:00:00.000000"}
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)})


def _alert(**fields: object) -> Alert:
    return Alert(rule="r", title="t", category="auth.bruteforce", severity="high", time=T0, last_seen=T0,
                 **fields)  # type: ignore[arg-type]


def test_a_cadf_notification_is_decoded_into_fields() -> None:
    raw = _envelope(keystone_auth_payload(username="alice", address="203.0.113.9"))
    fields = dict(evidence_fields(Evidence(ref="ctl1/notifications.json:1", raw=raw, time=T0)))
    assert fields["initiator.name"] == "alice"
    assert fields["initiator.source_ip"] == "203.0.113.9"
    assert (fields["action"], fields["outcome"]) == ("authenticate", "failure")
    assert not any('\\"' in value or value.startswith("{") for value in fields.values())


def test_a_syslog_line_is_parsed_into_fields() -> None:
    raw = "Mar  2 08:00:01 cmp1 sshd[4242]: Failed password for root from 203.0.113.9 port 5022 ssh2"
    fields = dict(evidence_fields(Evidence(ref="cmp1/auth.log:7", raw=raw, time=T0)))
    assert (fields["host"], fields["service"]) == ("cmp1", "sshd")
    assert fields["initiator.source_ip"] == "203.0.113.9"


def test_a_record_no_parser_knows_still_gives_its_message() -> None:
    fields = dict(evidence_fields(Evidence(ref="x:1", raw="something nobody writes", time=T0)))
    assert fields["message"] == "something nobody writes"
    assert fields["attrs.reason"] == "no parser recognised the record"


@pytest.mark.parametrize(("group_by", "key", "terms"), [
    (("initiator.source_ip",), "203.0.113.9", ["source_ip:203.0.113.9"]),
    (("initiator.name", "initiator.source_ip"), "alice|203.0.113.9", ["user:alice", "source_ip:203.0.113.9"]),
    (("initiator.name", "initiator.id"), "alice|0b1c", ["user:alice", "user:0b1c"]),
    (("host", "service"), "ctl1|keystone", ["host:ctl1", "service:keystone"]),
    (("initiator.name",), "svc account", ['user:"svc account"']),
    (("attrs.path",), "/etc", []),  # no search field: the alert's entities are used instead
])
def test_search_terms_come_from_the_rules_key_fields(group_by, key, terms) -> None:  # type: ignore[no-untyped-def]
    assert search_terms(_alert(key=key), group_by) == terms


def test_without_key_fields_the_alerts_entities_are_used() -> None:
    alert = _alert(key="x", source_ip="203.0.113.9", user="alice")
    assert search_terms(alert) == ["source_ip:203.0.113.9", "user:alice"]


def test_the_link_covers_the_alerts_first_to_last_firing() -> None:
    link = search_link(_alert(key="203.0.113.9"), ("initiator.source_ip",))
    assert link == ("/search?q=source_ip%3A203.0.113.9&from=2026-03-02T08%3A00%3A00%2B00%3A00"
                    "&to=2026-03-02T08%3A00%3A01%2B00%3A00")


def test_no_link_when_nothing_names_the_events() -> None:
    assert search_link(_alert(key="")) is None
