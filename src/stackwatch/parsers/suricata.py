"""Suricata: eve.json documents, fast.log lines, and fast-style alerts sent to syslog.

fast.log (also Snort's "alert fast" format)::

    10/05/2023-10:01:02.123456  [**] [1:2010935:3] ET POLICY ... [**] [Classification: ...]
    [Priority: 2] {TCP} 1.2.3.4:123 -> 5.6.7.8:80

Suricata's priority / eve ``alert.severity`` runs 1 (highest) to 4.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from datetime import UTC, datetime
from typing import Any

from stackwatch.core.event import Event, Initiator, Target
from stackwatch.parsers.base import ParseContext

_PRIORITY_SEVERITY = {1: "critical", 2: "error", 3: "warning", 4: "notice"}
_FAST_RE = re.compile(  # suricata's syslog output has no '[**]' markers
    r"(?:(?P<drop>\[Drop\]|\[wDrop\]) )?(?:\[\*\*\] )?\[(?P<gid>\d+):(?P<sid>\d+):(?P<rev>\d+)\] "
    r"(?P<sig>.*?)(?: \[\*\*\])?"
    r"(?: \[Classification: (?P<cls>[^\]]*)\])?(?: \[Priority: (?P<prio>\d+)\])?"
    r"(?: \{(?P<proto>[^}]+)\} (?P<src>\S+?)(?::(?P<sport>\d+))? -> (?P<dst>\S+?)(?::(?P<dport>\d+))?)?\s*$")
_FAST_TIME_RE = re.compile(r"(\d\d)/(\d\d)(?:/(\d{2,4}))?-(\d\d:\d\d:\d\d(?:\.\d+)?)\s+")


def _split_endpoint(address: str, port: str | None) -> tuple[str, str | None]:
    # IPv6 fast.log endpoints are 'addr:port' with colons inside the address
    if port is None and address.count(":") > 1 and address.rsplit(":", 1)[1].isdigit():
        address, port = address.rsplit(":", 1)
    address = address.strip("[]")
    if ":" in address:  # fast.log writes IPv6 in full ('0000:...:0001'), eve.json compressed ('::1')
        with contextlib.suppress(ValueError):  # not an address: kept as written
            address = ipaddress.IPv6Address(address).compressed
    return address, port


def alert_fields(body: str) -> dict[str, Any] | None:
    """Event fields of a fast-format alert body (the part after the timestamp)."""
    match = _FAST_RE.match(body.strip())
    if match is None:
        return None
    # 1 is the highest; Snort's priority 0 counts as 1
    priority = min(4, max(1, int(match.group("prio")))) if match.group("prio") else 3
    src, sport = _split_endpoint(match.group("src") or "", match.group("sport"))
    dst, dport = _split_endpoint(match.group("dst") or "", match.group("dport"))
    attrs: dict[str, Any] = {
        "signature": match.group("sig"), "signature_id": int(match.group("sid")),
        "gid": int(match.group("gid")), "rev": int(match.group("rev")), "ids_severity": priority,
    }
    if match.group("cls"):
        attrs["category"] = match.group("cls")
    if match.group("proto"):
        attrs["proto"] = match.group("proto")
    if sport:
        attrs["src_port"] = int(sport)
    if dport:
        attrs["dest_port"] = int(dport)
    if match.group("drop"):
        attrs["alert_action"] = "blocked"
    return {
        "kind": "suricata", "service": "suricata", "action": "ids.alert",
        "severity": _PRIORITY_SEVERITY.get(priority, "warning"), "message": match.group("sig"),
        "initiator": Initiator(source_ip=src or None), "target": Target(type="host", id=dst or None),
        "attrs": attrs,
    }


class FastLogParser:
    """Record parser for fast.log (one line per alert)."""

    name = "suricata_fast"
    multiline = False  # continues() is always False: the framing need not ask

    def sniff(self, line: str) -> bool:
        return line[2:3] == "/" and "[**] [" in line and _FAST_TIME_RE.match(line) is not None

    def continues(self, first: str, line: str) -> bool:
        return False

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        line = lines[0]
        stamp = _FAST_TIME_RE.match(line)
        fields = alert_fields(line[stamp.end():]) if stamp else None
        if stamp is None or fields is None:
            return []
        month, day, year, clock = stamp.groups()
        if year is None:  # Snort without -y
            year = str(ctx.year or (ctx.last_time or ctx.received).year)
        elif len(year) == 2:
            year = "20" + year
        when = datetime.fromisoformat(f"{year}-{month}-{day}T{clock}").replace(tzinfo=UTC)
        return [Event(time=when, received=ctx.received, host=ctx.host, raw=line, origin=ctx.origin,
                      ref=ctx.ref, **fields)]


class SuricataMessageParser:
    name = "suricata"
    programs = frozenset({"suricata", "snort"})

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        fields = alert_fields(message)
        if fields is not None and program == "snort":
            fields["service"] = "snort"
        return fields


def _eve_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def from_json(obj: dict[str, Any], raw: str, ctx: ParseContext) -> list[Event] | None:
    """An eve.json document (``event_type`` + ``timestamp``), or None for other JSON."""
    event_type = obj.get("event_type")
    if not isinstance(event_type, str) or "timestamp" not in obj:
        return None
    when = _eve_time(obj["timestamp"])
    if when is None:
        return None
    attrs: dict[str, Any] = {"event_type": event_type}
    for key in ("flow_id", "src_port", "dest_port", "proto", "app_proto", "in_iface", "community_id",
                "direction"):
        if key in obj:
            attrs[key] = obj[key]
    src, dst = obj.get("src_ip"), obj.get("dest_ip")
    severity = "info"
    message = event_type
    alert = obj.get("alert")
    if event_type == "alert" and isinstance(alert, dict):
        ids_severity: Any = alert.get("severity") if isinstance(alert.get("severity"), int) else 3
        attrs.update(signature=alert.get("signature"), signature_id=alert.get("signature_id"),
                     category=alert.get("category"), ids_severity=ids_severity,
                     alert_action=alert.get("action"), gid=alert.get("gid"), rev=alert.get("rev"))
        severity = _PRIORITY_SEVERITY.get(ids_severity, "warning")
        message = str(alert.get("signature") or "alert")
    elif isinstance(obj.get(event_type), dict):
        attrs[event_type] = obj[event_type]  # the type's own section (dns, http, flow...)
    host = obj.get("host") if isinstance(obj.get("host"), str) else ctx.host
    return [Event(
        time=when, received=ctx.received, host=host or ctx.host, service="suricata", kind="suricata",
        severity=severity, message=message, action=f"ids.{event_type}",
        initiator=Initiator(source_ip=src) if isinstance(src, str) else Initiator(),
        target=Target(type="host", id=dst) if isinstance(dst, str) else Target(),
        attrs=attrs, raw=raw, origin=ctx.origin, ref=ctx.ref,
    )]


FAST_PARSER = FastLogParser()
MESSAGE_PARSER = SuricataMessageParser()
