"""notification: oslo.messaging envelopes and every nova versioned sample in the corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.framing import parse_text
from stackwatch.parsers.notification import (
    normalize_notification,
    notification_fields,
    publisher_host,
    unwrap_ovo,
)

NOVA_SAMPLES = Path("notifications/nova-versioned")


def resolve_refs(value: Any, base: Path) -> Any:
    """Nova's sample-test JSON-reference merge: ``{"$ref": "file#", ...overrides}`` becomes the
    referenced document (refs resolved relative to that file) with the overrides merged in."""
    if isinstance(value, list):
        return [resolve_refs(item, base) for item in value]
    if not isinstance(value, dict):
        return value
    if "$ref" in value:
        path = base / value["$ref"].partition("#")[0]
        referenced = resolve_refs(json.loads(path.read_text()), path.parent)
        overrides = {k: v for k, v in value.items() if k != "$ref"}
        return _merge(referenced, resolve_refs(overrides, base))
    return {key: resolve_refs(item, base) for key, item in value.items()}


def _merge(into: Any, override: Any) -> Any:
    if isinstance(into, dict) and isinstance(override, dict):
        merged = dict(into)
        for key, item in override.items():
            merged[key] = _merge(merged[key], item) if key in merged else item
        return merged
    return override


def _sample_files(corpus: Path) -> list[Path]:
    return sorted((corpus / NOVA_SAMPLES).glob("*.json"))


def test_ref_resolution_merges_overrides(corpus):
    ref = {"$ref": "common_payloads/InstanceActionVolumePayload.json#"}
    payload = resolve_refs(ref, corpus / NOVA_SAMPLES)
    assert payload["nova_object.name"] == "InstanceActionVolumePayload"
    assert payload["nova_object.data"]["volume_id"] == "a07f71dc-8151-4e7d-a0cc-cd24a3f11113"
    assert payload["nova_object.data"]["uuid"]  # inherited from InstanceActionPayload -> InstancePayload
    assert "$ref" not in json.dumps(payload)


def test_every_nova_versioned_sample_parses(corpus):
    files = _sample_files(corpus)
    assert len(files) > 100
    for path in files:
        message = resolve_refs(json.loads(path.read_text()), path.parent)
        raw = orjson.dumps(message).decode()
        (event,) = parse_text(raw)
        assert event.kind == "notification", path.name
        assert event.action == message["event_type"], path.name
        assert event.attrs["event_type"] == message["event_type"]
        assert event.host == message["publisher_id"].partition(":")[2], path.name
        assert "nova_object.data" not in json.dumps(event.attrs["payload"]), path.name
        if message["event_type"].startswith("instance."):
            data = message["payload"]["nova_object.data"]
            assert event.target.type == "instance", path.name
            assert event.target.id == data["uuid"], path.name
            assert event.initiator.project == data["tenant_id"], path.name
            assert event.service.startswith("nova-"), path.name


def test_normalize_notification_is_callable_directly():
    msg = {"event_type": "identity.user.deleted", "publisher_id": "identity.ctl1", "priority": "INFO",
           "payload": {"resource_info": "u9"}, "timestamp": "2024-01-01 00:00:00.000000",
           "_context_request_id": "req-9", "_context_user_id": "admin-id"}
    (event,) = normalize_notification(msg, "raw", ParseContext(origin="amqp:keystone"))
    assert (event.kind, event.action, event.target.type, event.target.id) == (
        "notification", "deleted.user", "user", "u9")
    assert event.request_id == "req-9"
    assert event.initiator.id == "admin-id"
    assert event.origin == "amqp:keystone"
    assert event.raw == "raw"


@pytest.mark.parametrize(("publisher", "host"), [
    ("compute.host1", "host1"),
    ("nova-compute:compute", "compute"),
    ("identity.juju-644baf-yoga-ceph-6", "juju-644baf-yoga-ceph-6"),
    ("uwsgi", ""),
])
def test_publisher_host(publisher, host):
    assert publisher_host(publisher) == host


def test_unwrap_ovo_is_recursive():
    wrapped = {"nova_object.data": {"a": {"nova_object.data": {"b": 1}, "nova_object.name": "X"}, "l": [
        {"nova_object.data": {"c": 2}}]}}
    assert unwrap_ovo(wrapped) == {"a": {"b": 1}, "l": [{"c": 2}]}


def test_priority_sets_severity():
    (event,) = parse_text(json.dumps({"event_type": "compute.exception", "publisher_id": "nova-api:x",
                                      "priority": "ERROR", "payload": {}}))
    assert event.severity == "error"


@pytest.mark.parametrize(("priority", "severity"), [
    ("INFO", "info"), ("info", "info"), ("WARN", "warning"), ("warning", "warning"), ("ERROR", "error"),
    ("AUDIT", "notice"), ("SAMPLE", "info"), ("CRITICAL", "critical"), ("nonsense", "info"),
])
def test_priority_spellings_map_to_severities(priority, severity):
    msg = {"event_type": "compute.exception", "publisher_id": "nova-api:x", "priority": priority,
           "payload": {}}
    for _ in range(2):  # the second time through the memo
        assert notification_fields(msg)["severity"] == severity


def test_cadf_attrs_follow_the_envelope_attrs():
    payload = {"typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event", "id": "c-1",
               "eventType": "activity", "action": "authenticate", "outcome": "failure",
               "reason": {"reasonCode": 401, "reasonType": "Unauthorized"},
               "observer": {"id": "obs", "typeURI": "service/security"}, "initiator": {"id": "u-1"}}
    msg = {"message_id": "m-1", "publisher_id": "identity.ctl1", "event_type": "identity.authenticate",
           "priority": "INFO", "payload": payload}
    attrs = notification_fields(msg)["attrs"]
    assert list(attrs) == ["event_type", "message_id", "publisher_id", "priority", "cadf_id",
                           "cadf_event_type", "reason_code", "reason_type", "observer_id"]
    assert attrs["reason_code"] == "401"


def test_context_keys_fill_the_initiator_and_other_underscored_keys_do_not():
    msg = {"event_type": "compute.instance.create.end", "publisher_id": "compute.cmp1", "priority": "INFO",
           "payload": {"instance_id": "i-1"}, "_unique_id": "x", "_context_user_name": "alice",
           "_context_remote_address": "10.0.0.9"}
    fields = notification_fields(msg)
    assert (fields["initiator"].name, fields["initiator"].source_ip) == ("alice", "10.0.0.9")
    without = notification_fields({k: v for k, v in msg.items() if not k.startswith("_context_")})
    assert (without["initiator"].name, without["initiator"].source_ip) == (None, None)
