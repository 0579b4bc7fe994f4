"""OSSEC / Wazuh: alerts.log blocks, alerts.json documents, alerts sent to syslog, and the
manager's own logs (active-responses.log, ossec.log).

alerts.log block::

    ** Alert 1234567890.123: - syslog,sshd,authentication_failed,
    2024 Jan 01 00:00:00 (agent) 10.0.0.1->/var/log/secure
    Rule: 5716 (level 5) -> 'SSHD authentication failed.'
    Src IP: 10.0.0.5
    User: root
    Jan  1 00:00:00 agent sshd[123]: Failed password for root from 10.0.0.5 port 22 ssh2
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from stackwatch.core.event import Event, Initiator, Target
from stackwatch.parsers.base import ParseContext

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}
_ALERT_RE = re.compile(r"\*\* Alert (?P<id>\d+\.\d+):(?P<flags>[^-]*)- ?(?P<groups>.*)")
_WHERE_RE = re.compile(r"(?P<y>\d{4}) (?P<mon>[A-Z][a-z]{2}) (?P<d>\d\d) (?P<t>\d\d:\d\d:\d\d) "
                       r"(?:\((?P<agent>[^)]*)\) (?P<agent_ip>\S+?)|(?P<host>[^\s>]+?))->(?P<location>.*)")
_RULE_RE = re.compile(r"Rule: (?P<id>\d+) \(level (?P<level>\d+)\) -> '(?P<desc>.*)'\s*$")
_FIELDS = {"Src IP": "srcip", "Dst IP": "dstip", "Src Port": "srcport", "Dst Port": "dstport", "User": "user"}
_SYSLOG_RE = re.compile(r"Alert Level: (?P<level>\d+); Rule: (?P<id>\d+) - (?P<desc>.*?); "
                        r"Location: (?P<loc>[^;]*);(?P<rest>.*)")
_AR_RE = re.compile(r"(?:[A-Z][a-z]{2}) (?P<mon>[A-Z][a-z]{2}) +(?P<d>\d+) (?P<t>\d\d:\d\d:\d\d) "
                    r"(?P<tz>[A-Z]+) (?P<y>\d{4}) (?P<cmd>\S*active-response/bin/(?P<script>\S+)) "
                    r"(?P<op>add|delete) (?P<user>\S+) (?P<ip>\S+)"
                    r"(?: (?P<alert>\d+\.\d+))?(?: (?P<rule>\d+))?")
_OSSEC_LOG_RE = re.compile(r"(?P<date>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) (?P<prog>[\w-]+)"
                           r"(?:\[\d+\]|\((?P<code>\d+)\))?: (?P<level>[A-Z]+): (?P<msg>.*)")
_TZ_HOURS = {"UTC": 0, "GMT": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8,
             "PDT": -7, "CET": 1, "CEST": 2}
_WEEKDAYS = ("Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun ")


def level_severity(level: int) -> str:
    if level >= 12:
        return "critical"
    if level >= 10:
        return "error"
    if level >= 7:
        return "warning"
    if level >= 4:
        return "notice"
    return "info"


def _alert(level: int, rule_id: str, description: str, groups: list[str], srcip: str | None,
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"rule_id": rule_id, "level": level, "description": description, "groups": groups}
    attrs.update(extra or {})
    return {"kind": "ossec", "action": "ids.alert", "severity": level_severity(level), "message": description,
            "initiator": Initiator(source_ip=srcip or None, name=attrs.get("user")), "attrs": attrs}


class OssecLogParser:
    """alerts.log blocks, plus active-responses.log and ossec.log lines."""

    name = "ossec"

    def sniff(self, line: str) -> bool:
        if line.startswith("** Alert "):
            return True
        if line[4:5] == "/" and line[7:8] == "/" and line[:4].isdigit():  # ossec.log
            return _OSSEC_LOG_RE.match(line) is not None
        return line[:4] in _WEEKDAYS and "active-response/bin/" in line

    def continues(self, first: str, line: str) -> bool:
        return first.startswith("** Alert ") and bool(line.strip()) and not self.sniff(line)

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        first = lines[0]
        if first.startswith("** Alert "):
            fields = self._alert_block(lines, ctx)
        elif first[:4] in _WEEKDAYS:
            fields = self._active_response(first)
        else:
            fields = self._ossec_log(first)
        if fields is None:
            return []
        fields.setdefault("time", ctx.last_time or ctx.received)
        fields.setdefault("host", ctx.host)
        fields.setdefault("service", "ossec")
        return [Event(received=ctx.received, raw="\n".join(lines), origin=ctx.origin, ref=ctx.ref, **fields)]

    @staticmethod
    def _alert_block(lines: list[str], ctx: ParseContext) -> dict[str, Any] | None:
        head = _ALERT_RE.match(lines[0])
        if head is None:
            return None
        where = _WHERE_RE.match(lines[1]) if len(lines) > 1 else None
        rule = next((m for m in (_RULE_RE.match(line) for line in lines[1:4]) if m), None)
        if rule is None:
            return None
        values: dict[str, str] = {}
        full_log: list[str] = []
        after_rule = False
        for line in lines[1:]:
            if not after_rule:
                after_rule = line.startswith("Rule: ")
                continue
            key, sep, value = line.partition(": ")
            if sep and key in _FIELDS and not full_log:
                values[_FIELDS[key]] = value.strip()
            else:
                full_log.append(line)
        groups = [g for g in head.group("groups").strip().split(",") if g]
        extra: dict[str, Any] = {"alert_id": head.group("id"), **values}
        if full_log:
            extra["full_log"] = "\n".join(full_log)
        fields = _alert(int(rule.group("level")), rule.group("id"), rule.group("desc"), groups,
                        values.get("srcip"), extra)
        if where is not None:
            month = _MONTHS.get(where.group("mon"), 1)
            fields["time"] = datetime.fromisoformat(
                f"{where.group('y')}-{month:02d}-{where.group('d')}T{where.group('t')}").replace(tzinfo=UTC)
            fields["host"] = where.group("agent") or where.group("host") or ctx.host
            fields["attrs"]["location"] = where.group("location")
            if where.group("agent_ip"):
                fields["attrs"]["agent_ip"] = where.group("agent_ip")
        else:
            fields["time"] = datetime.fromtimestamp(int(head.group("id").split(".")[0]), UTC)
        return fields

    @staticmethod
    def _active_response(line: str) -> dict[str, Any] | None:
        match = _AR_RE.match(line)
        if match is None:
            return None
        offset = timezone(timedelta(hours=_TZ_HOURS.get(match.group("tz"), 0)))
        when = datetime.fromisoformat(
            f"{match.group('y')}-{_MONTHS.get(match.group('mon'), 1):02d}-{int(match.group('d')):02d}"
            f"T{match.group('t')}").replace(tzinfo=offset).astimezone(UTC)
        attrs = {"script": match.group("script"), "op": match.group("op"), "command": match.group("cmd")}
        if match.group("alert"):
            attrs["alert_id"] = match.group("alert")
        if match.group("rule"):
            attrs["rule_id"] = match.group("rule")
        ip = match.group("ip")
        return {"time": when, "kind": "ossec", "action": "ids.response", "severity": "notice",
                "message": line[match.start("cmd"):],
                "target": Target(type="host", id=None if ip == "-" else ip),
                "attrs": attrs}

    @staticmethod
    def _ossec_log(line: str) -> dict[str, Any] | None:
        match = _OSSEC_LOG_RE.match(line)
        if match is None:
            return None
        when = datetime.fromisoformat(match.group("date").replace("/", "-")).replace(tzinfo=UTC)
        level = match.group("level").lower()
        return {"time": when, "kind": "ossec", "service": match.group("prog"),
                "severity": {"info": "info", "warning": "warning", "error": "error",
                             "critical": "critical"}.get(level, "info"),
                "message": match.group("msg"), "attrs": {"code": match.group("code"), "level": level}}


class OssecMessageParser:
    """Alerts forwarded by ossec-csyslogd / wazuh: 'Alert Level: 5; Rule: 5716 - ...; Location: ...;'."""

    name = "ossec"
    programs = frozenset({"ossec", "wazuh", "ossec-remoted", "ossec-csyslogd", "wazuh-csyslogd",
                          "ossec-analysisd", "wazuh-analysisd"})

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        match = _SYSLOG_RE.search(message)
        if match is None:
            return None
        extra: dict[str, Any] = {"location": match.group("loc").strip()}
        rest = match.group("rest")
        for part in rest.split(";"):
            key, sep, value = part.strip().partition(": ")
            if sep and key.isidentifier() and key not in extra:
                extra[key] = value.strip()
            elif part.strip():
                extra["full_log"] = rest.strip()
                break
        fields = _alert(int(match.group("level")), match.group("id"), match.group("desc"), [],
                        extra.get("srcip"), extra)
        fields["service"] = "wazuh" if program.startswith("wazuh") else "ossec"
        return fields


def from_json(obj: dict[str, Any], raw: str, ctx: ParseContext) -> list[Event] | None:
    """A Wazuh alerts.json document (``rule`` with a ``level``), or None."""
    rule = obj.get("rule")
    if not isinstance(rule, dict) or "level" not in rule or "timestamp" not in obj:
        return None
    try:
        when = datetime.fromisoformat(str(obj["timestamp"]))
        level = int(rule["level"])
    except (TypeError, ValueError):
        return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    data = obj["data"] if isinstance(obj.get("data"), dict) else {}
    agent = obj["agent"] if isinstance(obj.get("agent"), dict) else {}
    groups = rule["groups"] if isinstance(rule.get("groups"), list) else []
    extra: dict[str, Any] = {"data": data}
    for key in ("full_log", "location", "id"):
        if key in obj:
            extra["alert_id" if key == "id" else key] = obj[key]
    if agent.get("ip"):
        extra["agent_ip"] = agent["ip"]
    if isinstance(data.get("srcuser") or data.get("dstuser"), str):
        extra["user"] = data.get("srcuser") or data.get("dstuser")
    fields = _alert(level, str(rule.get("id", "")), str(rule.get("description", "")), groups,
                    data.get("srcip") if isinstance(data.get("srcip"), str) else None, extra)
    service = "wazuh" if "manager" in obj or "decoder" in obj else "ossec"
    return [Event(time=when, received=ctx.received, host=str(agent.get("name") or ctx.host), service=service,
                  raw=raw, origin=ctx.origin, ref=ctx.ref, **fields)]


PARSER = OssecLogParser()
MESSAGE_PARSER = OssecMessageParser()
