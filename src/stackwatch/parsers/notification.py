"""oslo.messaging notifications: the v2 wire envelope and the plain notification dict.

``{"oslo.version": "2.0", "oslo.message": "<json string>"}`` is decoded twice; the inner
(or plain) dict has message_id, publisher_id, event_type, priority, payload, timestamp
and, from the AMQP driver, the request context as ``_context_*`` keys.

Payloads: CADF events go to cadf.normalize_cadf; keystone's basic format
(``{"resource_info": id}``), legacy nova ``compute.instance.*``, versioned nova
``instance.*`` (ovo ``nova_object.data`` unwrapped), cinder ``volume.*``, neutron
``port.*``/``floatingip.*`` and glance ``image.*`` get their target/initiator here.
Everything is kind ``notification``; ``normalize_notification`` is also the entry point
of the RabbitMQ consumer.
"""

from __future__ import annotations

from typing import Any

import orjson

from stackwatch.core.event import Event, Initiator, Target, normalize_severity
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.cadf import CADF_EVENT_URI, normalize_cadf, parse_time

# publisher_id prefix (legacy '<service>.<host>') -> service name.
_PUBLISHER_SERVICES = {
    "identity": "keystone",
    "compute": "nova-compute",
    "scheduler": "nova-scheduler",
    "conductor": "nova-conductor",
    "volume": "cinder-volume",
    "network": "neutron-server",
    "image": "glance-api",
}
# event_type prefix -> service, when the publisher says nothing useful.
_EVENT_SERVICES = {
    "identity": "keystone",
    "compute": "nova-compute",
    "instance": "nova-compute",
    "volume": "cinder-volume",
    "snapshot": "cinder-volume",
    "port": "neutron-server",
    "floatingip": "neutron-server",
    "network": "neutron-server",
    "subnet": "neutron-server",
    "router": "neutron-server",
    "security_group": "neutron-server",
    "image": "glance-api",
}
_PRIORITY_SEVERITY = {"SAMPLE": "info", "AUDIT": "notice", "WARN": "warning"}
_MAX_PAYLOAD_DEPTH = 32


def unwrap_ovo(value: Any, depth: int = 0) -> Any:
    """Replace every ovo ``{"nova_object.data": {...}, ...}`` by its data, recursively."""
    if depth > _MAX_PAYLOAD_DEPTH:
        return value
    if isinstance(value, dict):
        if "nova_object.data" in value and isinstance(value["nova_object.data"], dict):
            value = value["nova_object.data"]
        return {key: unwrap_ovo(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_ovo(item, depth + 1) for item in value]
    return value


def _text(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    return str(value)


def publisher_host(publisher_id: str) -> str:
    """``compute.host1`` -> host1, ``nova-compute:compute`` -> compute, ``uwsgi`` -> ''."""
    if ":" in publisher_id:
        return publisher_id.partition(":")[2]
    if "." in publisher_id:
        return publisher_id.partition(".")[2]
    return ""


def notification_service(event_type: str, publisher_id: str) -> str:
    if ":" in publisher_id:  # versioned: 'nova-compute:compute'
        return publisher_id.partition(":")[0]
    head = publisher_id.partition(".")[0]
    if head in _PUBLISHER_SERVICES:
        return _PUBLISHER_SERVICES[head]
    return _EVENT_SERVICES.get(event_type.partition(".")[0], "")


def _context(msg: dict[str, Any]) -> dict[str, Any]:
    """The ``_context_*`` keys of an AMQP-driver message, without the prefix."""
    # Keystone sends an empty context: one C-level scan of the joined key names says whether
    # the per-key loop is needed (a match across two keys only costs that loop).
    if "_context_" not in "".join(msg):
        return {}
    return {key[9:]: value for key, value in msg.items() if key.startswith("_context_")}


def _resource_fields(event_type: str, payload: Any) -> tuple[Target, dict[str, Any]]:
    """(target, initiator bits) for the resource-specific payloads."""
    head = event_type.partition(".")[0]
    who: dict[str, Any] = {}
    if not isinstance(payload, dict):
        return Target(type=head or None), who
    if head in ("compute", "instance"):  # legacy compute.instance.* / versioned instance.*
        who = {"project": payload.get("tenant_id") or payload.get("project_id"), "id": payload.get("user_id")}
        return Target(type="instance", id=_text(payload.get("instance_id") or payload.get("uuid")),
                      name=_text(payload.get("display_name"))), who
    if head == "volume":
        who = {"project": payload.get("tenant_id") or payload.get("project_id"), "id": payload.get("user_id")}
        return Target(type="volume", id=_text(payload.get("volume_id")),
                      name=_text(payload.get("display_name") or payload.get("name"))), who
    if head in ("port", "floatingip"):  # {'port': {...}} on create/update, {'port_id': id} on delete
        inner = payload.get(head)
        body: dict[str, Any] = inner if isinstance(inner, dict) else {}
        who = {"project": body.get("project_id") or body.get("tenant_id")}
        return Target(type=head, id=_text(body.get("id") or payload.get(f"{head}_id")),
                      name=_text(body.get("name") or body.get("floating_ip_address"))), who
    if head == "image":
        who = {"project": payload.get("owner")}
        return Target(type="image", id=_text(payload.get("id")), name=_text(payload.get("name"))), who
    who = {"project": payload.get("project_id") or payload.get("tenant_id"), "id": payload.get("user_id")}
    return Target(type=head or None, id=_text(payload.get("uuid") or payload.get("id")),
                  name=_text(payload.get("name"))), who


def notification_fields(msg: dict[str, Any]) -> dict[str, Any]:
    """Event fields (without time/raw/origin/received) for one notification dict."""
    # The values are nearly always str already: ``str()`` only for the others (a call less each).
    get = msg.get
    event_type = get("event_type")
    if event_type.__class__ is not str:
        event_type = str(event_type or "")
    publisher_id = get("publisher_id")
    if publisher_id.__class__ is not str:
        publisher_id = str(publisher_id or "")
    given_priority = get("priority")
    priority = (given_priority if given_priority.__class__ is str and given_priority
                else str(given_priority or "INFO"))
    payload = get("payload")
    context = _context(msg)
    attrs: dict[str, Any] = {"event_type": event_type}
    if message_id := get("message_id"):
        attrs["message_id"] = message_id if message_id.__class__ is str else str(message_id)
    if publisher_id:
        attrs["publisher_id"] = publisher_id
    if given_priority:
        attrs["priority"] = priority

    if isinstance(payload, dict) and payload.get("typeURI") == CADF_EVENT_URI:  # is_cadf_event, inlined
        fields = normalize_cadf(payload, event_type or None, attrs)  # CADF attrs after ours
    else:
        fields = _plain_fields(event_type, payload, attrs)
    if not fields.get("service"):
        fields["service"] = notification_service(event_type, publisher_id)
    fields["host"] = publisher_host(publisher_id)
    severity = _severities.get(priority) or _severity(priority)
    if severity not in ("info", "debug") or fields.get("severity") is None:
        fields["severity"] = severity
    if context:
        _apply_context(fields, context)
    return fields


_severities: dict[str, str] = {}
"""priority -> severity, memoised: a stream uses a handful of spellings."""


def _severity(priority: str) -> str:
    severity = _PRIORITY_SEVERITY.get(priority.upper()) or normalize_severity(priority)
    if len(_severities) < 64:  # bounded: priorities come off the wire
        _severities[priority] = severity
    return severity


def _plain_fields(event_type: str, payload: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    head, _, rest = event_type.partition(".")
    if head == "identity" and isinstance(payload, dict):  # keystone basic format
        resource, _, operation = rest.rpartition(".")
        if resource and operation:
            target_id = _text(payload.get("resource_info"))
            if resource == "role_assignment":
                for key in ("role", "user", "group", "project", "domain", "inherited_to_projects"):
                    if payload.get(key) is not None:
                        value = payload[key]
                        attrs[key] = value if isinstance(value, bool) else str(value)
            if target_id:
                attrs["resource_info"] = target_id
            return {
                "service": "keystone",
                "action": f"{operation}.{resource}",
                "target": Target(type=resource, id=target_id),
                "attrs": attrs,
                "message": f"{operation}.{resource} {target_id or ''}".rstrip(),
            }
    payload = unwrap_ovo(payload)
    attrs["payload"] = payload
    target, who = _resource_fields(event_type, payload)
    initiator = Initiator(project=_text(who.get("project")), id=_text(who.get("id")))
    message = " ".join(p for p in (event_type, target.type if target.id else None, target.id) if p)
    return {"action": event_type or None, "target": target, "initiator": initiator,
            "attrs": attrs, "message": message}


def _apply_context(fields: dict[str, Any], context: dict[str, Any]) -> None:
    """Fill initiator/request_id gaps from the request context (never overriding the payload)."""
    if not fields.get("request_id"):
        fields["request_id"] = _text(context.get("request_id"))
    initiator: Initiator = fields.get("initiator") or Initiator()
    fields["initiator"] = Initiator(
        name=initiator.name or _text(context.get("user_name")),
        id=initiator.id or _text(context.get("user_id") or context.get("user")),
        project=initiator.project or _text(context.get("project_id") or context.get("tenant_id")
                                           or context.get("tenant")),
        domain=initiator.domain or _text(context.get("domain_id") or context.get("user_domain")),
        source_ip=initiator.source_ip or _text(context.get("remote_address")),
        user_agent=initiator.user_agent,
    )
    if context.get("global_request_id"):
        fields["attrs"]["global_request_id"] = _text(context["global_request_id"])


def normalize_notification(msg: dict[str, Any], raw: str, ctx: ParseContext,
                           kind: str = "notification") -> list[Event]:
    """Events for one decoded notification dict (the RabbitMQ consumer calls this too)."""
    fields = notification_fields(msg)
    payload = msg.get("payload")
    time = (parse_time(msg.get("timestamp"))
            or (parse_time(payload.get("eventTime")) if isinstance(payload, dict) else None)
            or ctx.received)
    fields["host"] = fields["host"] or ctx.host
    fields["service"] = fields["service"] or ctx.service
    return [Event(time=time, received=ctx.received, kind=kind, raw=raw, origin=ctx.origin, ref=ctx.ref,
                  **fields)]


def decode_envelope(obj: Any) -> dict[str, Any] | None:
    """The notification dict inside ``obj``: the v2 envelope's double-encoded message, or
    ``obj`` itself when it is a plain notification; None when it is neither (a JSON body
    that is not an object included: it is not a notification, not a broken one)."""
    if not isinstance(obj, dict):
        return None
    inner = obj.get("oslo.message")
    if inner is not None:
        message = orjson.loads(inner) if isinstance(inner, str | bytes) else inner
        if not isinstance(message, dict):
            raise ValueError("oslo.message is not a JSON object")
        return message
    if "event_type" in obj and "payload" in obj and ("publisher_id" in obj or "priority" in obj):
        return obj
    return None


def from_json(obj: dict[str, Any], raw: str, ctx: ParseContext) -> list[Event] | None:
    message = decode_envelope(obj)
    if message is None:
        return None
    return normalize_notification(message, raw, ctx)
