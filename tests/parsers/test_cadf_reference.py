"""normalize_cadf, restructured into one function per CADF part, gives exactly what the
straight-line version before it gave (kept below, verbatim, as the oracle): over every CADF
payload of the corpus docs, one payload with every optional part, and malformed variants of
each (every key dropped, and retyped to each JSON type and to the values that steer the
mapping). Same fields, same attrs in the same order, or the same exception."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from stackwatch.core.event import Initiator, Target
from stackwatch.parsers.cadf import (
    _ATTR_KEYS,
    _EXPIRED_MARKERS,
    _LOCKED_MARKERS,
    _OUTCOMES,
    _ROLE_ASSIGNMENT_KEYS,
    _TYPE_URI_NAMES,
    _TYPE_URI_SERVICES,
    CADF_EVENT_URI,
    normalize_cadf,
)
from tests.parsers.test_cadf import json_examples

# ---- the reference: normalize_cadf and its helpers as of commit e0fc088 (unchanged) ----

def _text(value: Any) -> str | None:
    """A scalar as text (ids may be ints); None for missing/empty/containers."""
    if value.__class__ is str:  # nearly every value: skip the checks below
        return value or None
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    return str(value)


_NO_FIELDS: Final[dict[str, Any]] = {}
"""Stands in for an absent or malformed sub-object (never written to)."""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else _NO_FIELDS


def _authenticate_action(reason_type: str | None) -> str:
    if reason_type:
        lowered = reason_type.lower()
        if any(marker in lowered for marker in _LOCKED_MARKERS):
            return "account.locked"
        if any(marker in lowered for marker in _EXPIRED_MARKERS):
            return "password.expired"
    return "authenticate"


def _service(event_type: str | None, action: Any, target_uri: str | None, observer_uri: str | None) -> str:
    """The service an event is about: keystone for identity events, else from the target typeURI."""
    if (event_type and event_type.startswith("identity.")) or action == "authenticate":
        return "keystone"
    if target_uri:
        for prefix, service in _TYPE_URI_SERVICES:
            if target_uri.startswith(prefix):
                return service
    return "keystone" if observer_uri == "service/security" else ""


def reference_normalize_cadf(payload: dict[str, Any], event_type: str | None = None,
                   attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Event fields (not time/raw/origin) for one CADF event dict. ``attrs``: a dict the CADF
    attrs are added to (the notification's own, which keep their place first); a new one if None.

    Straight-line on purpose: every keystone notification goes through here, so each field
    CADF defines is read once, directly (no generic walk, no second pass for the summary).
    ``_text`` and ``_dict`` are inlined for the values nearly all events carry (a str, None,
    a dict): about twenty calls less per event; the calls remain for anything else."""
    get = payload.get
    initiator = get("initiator")
    if initiator.__class__ is not dict:
        initiator = _dict(initiator)
    iget = initiator.get
    host = iget("host")
    if host.__class__ is not dict:
        host = _dict(host)
    target = get("target")
    if target.__class__ is not dict:
        target = _dict(target)
    observer = get("observer")
    if observer.__class__ is not dict:
        observer = _dict(observer)
    reason = get("reason")
    if reason.__class__ is not dict:
        reason = _dict(reason)
    raw_action = get("action")
    action = ((raw_action or None) if raw_action.__class__ is str else _text(raw_action)) or ""
    outcome = get("outcome")
    if outcome.__class__ is str:
        outcome = outcome or None
    elif outcome is not None:
        outcome = _text(outcome)
    reason_type = _text(reason.get("reasonType")) if reason else None

    if attrs is None:
        attrs = {}
    if event_type:
        attrs["event_type"] = event_type
    for key, attr in _ATTR_KEYS:
        value = get(key)
        if value is not None:
            if value.__class__ is str:
                if value:
                    attrs[attr] = value
            elif (value := _text(value)) is not None:
                attrs[attr] = value
    if reason:
        if (code := _text(reason.get("reasonCode"))) is not None:
            attrs["reason_code"] = code  # always text: keystone sends 401, keystonemiddleware "200"
        if reason_type is not None:
            attrs["reason_type"] = reason_type
    attachments = get("attachments")
    if attachments:
        for attachment in attachments:
            if isinstance(attachment, dict) and attachment.get("name") == "partial_password_hash":
                attrs["partial_password_hash"] = _text(attachment.get("content"))
    credential = iget("credential")
    if credential is not None and isinstance(credential, dict) and credential.get("identity_provider"):
        # federated authentication
        attrs["identity_provider"] = _text(credential.get("identity_provider"))
        attrs["credential_type"] = _text(credential.get("type"))
        if isinstance(credential.get("groups"), list):
            attrs["groups"] = [str(group) for group in credential["groups"]]
    observer_id = observer.get("id")
    if observer_id:
        attrs["observer_id"] = observer_id if observer_id.__class__ is str else _text(observer_id)

    tget = target.get
    target_uri = tget("typeURI")
    if target_uri.__class__ is str:
        target_uri = target_uri or None
    elif target_uri is not None:
        target_uri = _text(target_uri)
    target_type = target_uri
    target_id = tget("id")
    if target_id.__class__ is str:
        target_id = target_id or None
    elif target_id is not None:
        target_id = _text(target_id)
    if action.startswith("authenticate") or event_type == "identity.authenticate":
        action = _authenticate_action(reason_type) if reason_type else "authenticate"
    elif "." in action and "/" not in action:  # keystone CRUD: '<operation>.<resource>'
        resource = action.partition(".")[2]
        if target_type:
            attrs["target_type_uri"] = target_type
        target_type = resource or _TYPE_URI_NAMES.get(target_type or "", target_type)
        target_id = attrs.get("resource_info") or target_id
        if resource == "role_assignment":
            for key in _ROLE_ASSIGNMENT_KEYS:
                if key in payload and payload[key] is not None:
                    attrs[key] = payload[key] if isinstance(payload[key], bool) else str(payload[key])

    # The initiator's fields: each read once, as text (inlined _text, see above).
    name = iget("username")
    if name.__class__ is not str or not name:
        # keystone names an unknown account 'user_name' (the refused login of no such user)
        name = _text(name) or _text(iget("name")) or _text(iget("user_name"))
    initiator_id = iget("id")
    if initiator_id.__class__ is str:
        initiator_id = initiator_id or None
    elif initiator_id is not None:
        initiator_id = _text(initiator_id)
    user_id = iget("user_id")
    if user_id.__class__ is not str or not user_id:
        user_id = _text(user_id) or initiator_id
    project = iget("project_id")
    if project.__class__ is str:
        project = project or None
    elif project is not None:
        project = _text(project)
    domain = iget("domain_id")
    if domain.__class__ is not str or not domain:
        domain = _text(domain) or _text(iget("user_domain_id"))
    address = host.get("address")
    source_ip = (address or None) if address.__class__ is str else _text(address)
    agent = host.get("agent")
    if agent.__class__ is str:
        agent = agent or None
    elif agent is not None:
        agent = _text(agent)
    observer_uri = observer.get("typeURI")
    if observer_uri.__class__ is str:
        observer_uri = observer_uri or None
    elif observer_uri is not None:
        observer_uri = _text(observer_uri)
    request_id = iget("request_id")
    if request_id.__class__ is not str or not request_id:
        request_id = _text(request_id) or _text(get("request_id"))
    if (event_type and event_type.startswith("identity.")) or raw_action == "authenticate":
        service = "keystone"  # _service's first test, without the call
    else:
        service = _service(event_type, raw_action, target_uri, observer_uri)
    fields: dict[str, Any] = {
        "service": service,
        "action": action or None,
        "outcome": outcome if outcome in _OUTCOMES else (outcome and "unknown"),
        # positional: the field order of Initiator / Target (faster than keywords)
        "initiator": Initiator(name, user_id, project, domain, source_ip, agent),
        "target": Target(target_type, target_id, _text(tget("name"))),
        "observer": observer_uri or _text(observer_id),
        "request_id": request_id,
        "attrs": attrs,
        "message": _summary(action, outcome, name or initiator_id, address, target_type, target_id, attrs),
    }
    if outcome == "failure":
        fields["severity"] = "warning"
    return fields


def _summary(action: str, outcome: str | None, who: str | None, address: Any,
             target_type: str | None, target_id: str | None, attrs: dict[str, Any]) -> str:
    """'<action> <outcome> by <who> [from <address>] [path <path> | on <target>] [(<reason>)]'."""
    text = f"{action or '?'} {outcome} by {who or '?'}" if outcome else f"{action or '?'} by {who or '?'}"
    if address:
        text += f" from {address}"
    if "request_path" in attrs:
        text += f" path {attrs['request_path']}"
    elif target_type or target_id:
        on = f"{target_type or '?'} {target_id or ''}".strip()
        text += f" on {on}" if on else " on"
    if "reason_type" in attrs:
        text += f" ({attrs['reason_type']})"
    return text


# ---- the inputs ----

_EVENT_TYPES = (None, "", "identity.authenticate", "identity.project.deleted", "audit.http.response")
_ODD_VALUES: Final[tuple[Any, ...]] = (
    None, "", "x", 0, 7, 0.0, 2.5, True, False, [], ["a", 1], {}, {"k": "v"},
    # the values the mapping branches on
    "authenticate", "authenticate.x", "deleted.project", "created.role_assignment", "read/list", "a.",
    "failure", "success", "pending", "identity.x", "service/security", "service/compute/servers",
    "data/security/project", "partial_password_hash", "Maximum number of 3 login attempts exceeded.",
    "The password is expired and needs to be reset",
    [{"name": "partial_password_hash", "content": "h"}, {"name": "other"}, "s",
     {"name": "partial_password_hash"}],
    {"identity_provider": "idp", "type": "saml", "groups": ["g", 1]},
)


def _cadf_payloads(corpus: Path) -> list[tuple[dict[str, Any], str | None]]:
    """(payload, notification event_type) of every CADF event written in the corpus docs."""
    found = []
    for _, text in json_examples(corpus):
        try:  # references.md prints its keystone lines with one '}' too many: the leading document
            document, _ = json.JSONDecoder().raw_decode(text)
        except ValueError:
            continue
        if not isinstance(document, dict):
            continue
        payload = document.get("payload", document)
        if isinstance(payload, dict) and payload.get("typeURI") == CADF_EVENT_URI:
            found.append((payload, document.get("event_type")))
    return found


def _full_payloads() -> list[tuple[dict[str, Any], str | None]]:
    """One payload with every part the mapping reads set (the corpus has no single event
    with reason, attachments, federation and role assignment keys at once)."""
    base = {"typeURI": CADF_EVENT_URI, "eventType": "activity", "id": "e1",
            "eventTime": "2026-03-02T08:00:00+0000",
            "action": "created.role_assignment", "outcome": "success", "requestPath": "/v3/x",
            "resource_info": "r1", "request_id": "req-top", "role": "r", "user": 5, "project": "p",
            "inherited_to_projects": False, "group": None,
            "reason": {"reasonCode": 401, "reasonType": "Maximum number of 3 login attempts exceeded."},
            "attachments": [{"name": "partial_password_hash", "content": "abc"}],
            "observer": {"id": "o1", "typeURI": "service/security"},
            "initiator": {"id": "i1", "typeURI": "service/security/account/user", "username": "u",
                          "name": "n", "user_name": "un", "user_id": "uid", "project_id": "p1",
                          "domain_id": "d1", "user_domain_id": "ud1", "request_id": "req-1",
                          "host": {"address": "10.0.0.1", "agent": "curl"},
                          "credential": {"type": "http://docs.oasis-open.org/security/saml/v2.0",
                                         "identity_provider": "myidp", "groups": ["a", "b"]}},
            "target": {"id": "t1", "typeURI": "data/security/project", "name": "tn"}}
    return [(base, "identity.role_assignment.created"), (base, None), (base, "identity.authenticate")]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path inside a payload (list items by index)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield (*prefix, key)
        yield from _paths(item, (*prefix, key))


def _variants(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The payload with one key dropped, or set to each of the odd values."""
    for path in list(_paths(payload)):
        for value in (_DROP, *_ODD_VALUES):
            variant = copy.deepcopy(payload)
            parent = variant
            for key in path[:-1]:
                parent = parent[key]
            if value is _DROP:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(value)
            yield variant
    for key in ("initiator", "target", "observer", "reason", "attachments", "action", "outcome"):
        for value in _ODD_VALUES:  # the parts a payload may lack, added with odd values
            if key not in payload:
                yield {**payload, key: copy.deepcopy(value)}


_DROP: Final = object()


def _outcome(payload: dict[str, Any], event_type: str | None, attrs: dict[str, Any] | None,
             normalize: Any) -> Any:
    """What one normalization gives: the fields with attrs as ordered items, or the error."""
    try:
        fields = normalize(copy.deepcopy(payload), event_type, None if attrs is None else dict(attrs))
    except Exception as exc:  # the oracle's errors are part of its behaviour
        return ("raised", type(exc), str(exc))
    assert isinstance(fields["initiator"], Initiator) and isinstance(fields["target"], Target)
    return list(fields.items()), list(fields["attrs"].items())


def _assert_same(payload: dict[str, Any], event_type: str | None) -> None:
    for attrs in (None, {"priority": "INFO", "resource_info": "from-the-notification"}):
        new = _outcome(payload, event_type, attrs, normalize_cadf)
        old = _outcome(payload, event_type, attrs, reference_normalize_cadf)
        assert new == old, (payload, event_type, attrs)


def test_the_corpus_payloads_normalize_as_before(corpus: Path) -> None:
    payloads = _cadf_payloads(corpus)
    assert len(payloads) >= 12
    for payload, event_type in payloads + _full_payloads():
        for other in _EVENT_TYPES:
            _assert_same(payload, other)
        _assert_same(payload, event_type)


def test_malformed_payloads_normalize_as_before(corpus: Path) -> None:
    checked = 0
    for payload, event_type in _cadf_payloads(corpus) + _full_payloads():
        for variant in _variants(payload):
            _assert_same(variant, event_type)
            checked += 1
    assert checked > 10_000


@pytest.mark.parametrize("payload", [{}, {"typeURI": CADF_EVENT_URI}, {"initiator": None, "target": 3}])
def test_near_empty_payloads_normalize_as_before(payload: dict[str, Any]) -> None:
    for event_type in _EVENT_TYPES:
        _assert_same(payload, event_type)
