"""auditd: raw ``audit.log`` records, and audit records forwarded through syslog.

A raw record is ``[node=H ]type=T msg=audit(<epoch>.<ms>:<serial>): k=v ...``. The kernel
and auditd write one *event* as several records sharing a serial (SYSCALL, EXECVE, CWD,
PATH, PROCTITLE, EOE); they are joined here into ONE Event. Busy hosts interleave the
records of concurrent events written in the same millisecond, so a record also
continues one of a *nearby* serial with the same timestamp; ``parse`` then splits the
joined lines back into one event per serial (see ``AuditdParser.continues``).

Decoding follows the kernel's rules: a value it considers unsafe (spaces, quotes,
non-ASCII) is written unquoted as upper-case hex (EXECVE args, PROCTITLE with NUL
separators, ``cmd=`` of USER_CMD, ``exe``/``comm``/``cwd``/``name``...). USER_* records
carry their userspace fields inside ``msg='...'``; those are flattened into the record.
``log_format=ENRICHED`` appends interpreted fields after a ``\\x1d`` (``AUID="root"``);
they are kept under their upper-case names.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from stackwatch.core.event import Event, Initiator, Target
from stackwatch.parsers.base import ParseContext, RecordHeader, unparsed_event
from stackwatch.parsers.lazy import HeaderEvent

# Record types named only by number when auditd's table is older than the kernel.
_TYPE_NUMBERS: Final = {
    "1300": "SYSCALL", "1302": "PATH", "1306": "SOCKADDR", "1307": "CWD", "1309": "EXECVE",
    "1320": "EOE", "1325": "NETFILTER_CFG", "1327": "PROCTITLE", "1400": "AVC", "1107": "USER_AVC",
}
# Records that only describe the main record of an event (never the "main" one themselves).
_AUX: Final = frozenset({"EXECVE", "PROCTITLE", "PATH", "CWD", "EOE", "SOCKADDR"})
# Fields the kernel/userspace write hex-encoded (unquoted) when the text is unsafe.
_HEX_FIELDS: Final = frozenset({
    "comm", "exe", "cwd", "name", "path", "proctitle", "cmd", "acct", "data", "key", "ocomm",
    "dir", "file", "watch", "root_dir", "vm", "old-disk", "new-disk", "old-chardev", "new-chardev",
})
_TYPE_ACTIONS: Final = {
    "USER_LOGIN": "authenticate", "USER_AUTH": "authenticate", "USER_START": "session.open",
    "USER_END": "session.close", "SERVICE_START": "service.start", "SERVICE_STOP": "service.stop",
    "SYSTEM_BOOT": "system.boot", "SYSTEM_SHUTDOWN": "system.shutdown", "ADD_USER": "account.created",
    "DEL_USER": "account.deleted",
    # auditd's own records of itself: a halt (DAEMON_END) or a crash (DAEMON_ABORT) blinds the
    # audit trail; on nodes that log only through auditd these are the only trace of it
    "DAEMON_START": "service.start", "DAEMON_END": "service.stop", "DAEMON_ABORT": "service.fail",
}
_DAEMON_RECORDS: Final = frozenset({"DAEMON_START", "DAEMON_END", "DAEMON_ABORT"})
_OUTCOMES: Final = {"success": "success", "yes": "success", "1": "success",
             "failed": "failure", "fail": "failure", "no": "failure", "0": "failure"}
_UNSET: Final = frozenset({"4294967295", "-1", "unset", "?", ""})

_HEAD_RE: Final = re.compile(r"(?:node=(\S+) )?type=(\S+) (?:msg=)?audit\(([^)]*?):(\d+)\)\s*:?\s?")
_SPLIT_RE: Final = re.compile(r"(?:^|(?<=\s))(?:node=\S+ )?type=\S+ (?:msg=)?audit\(")
_KV_RE: Final = re.compile(r"""([A-Za-z_][\w\-\[\]]*)=("[^"]*"?|'[^']*'?|\S*)""")
_HEX_RE: Final = re.compile(r"(?:[0-9A-F]{2})+")
_ARG_RE: Final = re.compile(r"a(\d+)(?:\[(\d+)\])?")
_AVC_RE: Final = re.compile(r"avc:\s+(\w+)\s+\{\s*([^}]*?)\s*\}")
_ESCAPE_CONTROLS: Final = {c: f"\\x{c:02x}" for c in range(32) if c not in (0, 1, 9, 10)}
_SEP_LINE: Final = "----"  # ausearch separates events with '----' lines


@dataclass(slots=True)
class AuditRecord:
    """One ``type=... msg=audit(...)`` record, fields decoded."""

    node: str
    type: str
    stamp: str  # '1521757638.392', or '03/15/2017 12:00:01.123' from ausearch -i
    serial: int
    fields: dict[str, str]
    enriched: dict[str, str]
    body: str


def _decode_hex(value: str, printable: bool) -> str | None:
    """Text of an upper-case hex value, or None when it is not one (or, with
    ``printable``, decodes to control characters: then it was plain text after all)."""
    if not _HEX_RE.fullmatch(value):
        return None
    text = bytes.fromhex(value).decode("utf-8", "backslashreplace")
    if any(ch < " " and ch not in "\0\x01\t\n" for ch in text):
        if printable:
            return None
        text = text.translate(_ESCAPE_CONTROLS)  # keep terminal escapes out of alerts
    return text


def _value(key: str, raw: str) -> str:
    if raw[:1] == '"':
        return raw[1:-1] if len(raw) > 1 and raw[-1] == '"' else raw[1:]
    if raw.endswith(","):  # old PAM format: '(hostname=?, addr=?, terminal=cron res=success)'
        raw = raw[:-1]
    if raw.endswith(")") and "(" not in raw:
        raw = raw[:-1]
    if key in _HEX_FIELDS:
        decoded = _decode_hex(raw, printable=key == "acct")
        if decoded is not None:
            if key == "proctitle":
                return " ".join(part for part in decoded.split("\0") if part)
            if key == "key":  # several keys are joined by \x01
                return decoded.replace("\x01", ",")
            return decoded.rstrip("\0")
    return raw


def _put_values(pairs: list[tuple[str, str]], fields: dict[str, str]) -> None:
    """``fields[key] = _value(key, raw)`` for each pair, without the call for the plain values
    (numbers, ids, res=...) that ``_value`` gives back unchanged: most of a record's fields."""
    hex_fields = _HEX_FIELDS
    for key, raw in pairs:
        last = raw[-1:]
        if raw[:1] == '"' or last == "," or last == ")" or key in hex_fields:
            fields[key] = _value(key, raw)
        else:
            fields[key] = raw


_USER_BLOCKS: Final[dict[str, dict[str, str]]] = {}


def _user_block(raw: str) -> dict[str, str]:
    """The decoded fields of a USER_* record's ``msg='...'`` block. A host writes few distinct
    blocks (the same PAM stack, account, exe and terminal over and over: 66 in 6,600 records of
    the benchmark corpus), so they are read once per distinct text. Never mutated by callers."""
    block = _USER_BLOCKS.get(raw)
    if block is None:
        if len(_USER_BLOCKS) >= 4096:
            _USER_BLOCKS.clear()
        inner = raw[1:-1] if len(raw) > 1 and raw[-1] == "'" else raw[1:]
        block = {}
        _put_values(_KV_RE.findall(inner), block)
        _USER_BLOCKS[raw] = block
    return block


def _fields(body: str) -> tuple[dict[str, str], dict[str, str]]:
    enriched: dict[str, str] = {}
    if "\x1d" in body:
        body, _, tail = body.partition("\x1d")
        enriched = {key: _value("", raw) for key, raw in _KV_RE.findall(tail)}
    pairs = _KV_RE.findall(body)
    fields: dict[str, str] = {}
    if "'" in body:
        start = 0
        for index, (_key, raw) in enumerate(pairs):
            if raw[:1] == "'":  # userspace block of USER_* records: flattened in its place
                _put_values(pairs[start:index], fields)
                fields.update(_user_block(raw))
                start = index + 1
        _put_values(pairs[start:], fields)
    else:
        _put_values(pairs, fields)
    avc = _AVC_RE.match(body) if body.startswith("avc:") else None
    if avc:
        fields["seresult"], fields["seperms"] = avc.group(1), avc.group(2)
    return fields, enriched


def parse_record(text: str) -> AuditRecord | None:
    """One record, or None when ``text`` is not an audit record."""
    match = _HEAD_RE.match(text)
    if match is None:
        return None
    node, rtype, stamp, serial = match.groups()
    if rtype.startswith("UNKNOWN["):
        rtype = _TYPE_NUMBERS.get(rtype[8:-1], rtype)
    elif rtype.isdigit():
        rtype = _TYPE_NUMBERS.get(rtype, rtype)
    body = text[match.end():]
    fields, enriched = _fields(body)
    return AuditRecord(node or "", rtype, stamp, int(serial), fields, enriched, body)


def split_records(line: str) -> list[str]:
    """A line may hold several records (Wazuh/ossec join them with spaces)."""
    if line.count("audit(") < 2:
        return [line]
    starts = [m.start() for m in _SPLIT_RE.finditer(line)]
    if len(starts) < 2:
        return [line]
    return [line[a:b].rstrip() for a, b in zip(starts, [*starts[1:], len(line)], strict=True)]


def record_time(stamp: str) -> datetime:
    if "/" in stamp:  # ausearch -i: '03/15/2017 12:00:01.123' (local time; taken as UTC)
        date, _, clock = stamp.partition(" ")
        month, day, year = date.split("/")
        return datetime.fromisoformat(f"{year}-{month}-{day}T{clock}").replace(tzinfo=UTC)
    seconds, _, millis = stamp.partition(".")
    second = _SECONDS.get(seconds)
    if second is None:
        whole = int(seconds)
        try:  # epoch + timedelta: the instant fromtimestamp(...).replace(...) gives, at a third of the cost
            second = _EPOCH + timedelta(seconds=whole)
        except OverflowError:  # out of datetime's range: let fromtimestamp say so in its own words
            second = datetime.fromtimestamp(whole, UTC)
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        _SECONDS[seconds] = second
    millis_value = int(millis[:3].ljust(3, "0"))
    # a table of the 1000 timedeltas: building one per record costs more than the rest together
    if 0 <= millis_value < 1000:
        return second + _MILLIS[millis_value]
    return second + timedelta(milliseconds=millis_value)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Records of one host come many to a second: each second is converted once (bounded cache).
_SECONDS: Final[dict[str, datetime]] = {}
_MILLIS: Final = tuple(timedelta(milliseconds=n) for n in range(1000))


def _sockaddr(saddr: str, attrs: dict[str, Any]) -> None:
    try:
        raw = bytes.fromhex(saddr)
    except ValueError:
        return
    if len(raw) < 2:
        return
    family = int.from_bytes(raw[:2], "little")
    if family == 2 and len(raw) >= 8:
        attrs.update(socket_family="ipv4", socket_port=int.from_bytes(raw[2:4], "big"),
                     socket_addr=str(ipaddress.IPv4Address(raw[4:8])))
    elif family == 10 and len(raw) >= 24:
        attrs.update(socket_family="ipv6", socket_port=int.from_bytes(raw[2:4], "big"),
                     socket_addr=str(ipaddress.IPv6Address(raw[8:24])))
    elif family == 16:
        attrs["socket_family"] = "netlink"
    elif family == 1:
        attrs.update(socket_family="unix", socket_path=raw[2:].split(b"\0", 1)[0].decode("utf-8", "replace"))


def _execve_args(body: str) -> tuple[dict[str, str], list[str]]:
    """EXECVE fields and argv: a0..aN (quoted, or unquoted and then always hex), with the
    ``aN[i]`` chunks of long arguments joined before decoding."""
    fields: dict[str, str] = {}
    whole: dict[int, str] = {}
    chunks: dict[int, dict[int, str]] = {}
    for key, raw in _KV_RE.findall(body):
        match = _ARG_RE.fullmatch(key)
        if match is None:
            fields[key] = _value(key, raw)
            continue
        index = int(match.group(1))
        if match.group(2) is not None:
            chunks.setdefault(index, {})[int(match.group(2))] = raw
        elif raw[:1] == '"':
            whole[index] = _value(key, raw)
        else:
            decoded = _decode_hex(raw, printable=False)
            whole[index] = raw if decoded is None else decoded
    for index, parts in chunks.items():
        joined = "".join(parts[i] for i in sorted(parts))
        joined = joined[: len(joined) - len(joined) % 2]  # a record cut short
        decoded = _decode_hex(joined, printable=False)
        whole.setdefault(index, joined if decoded is None else decoded)
    return fields, [whole[i] for i in sorted(whole)]


def build_fields(records: list[AuditRecord]) -> dict[str, Any]:
    """The Event fields of one audit event (the records of one serial, in order)."""
    if len(records) == 1:  # most events (USER_*, SERVICE_*...): no scans for the main record
        only = records[0]
        types, node = [only.type], only.node
        main = only if only.type not in _AUX else None
    else:
        types = [r.type for r in records]
        node = next((r.node for r in records if r.node), "")
        main = next((r for r in records if r.type == "SYSCALL"), None) or next(
            (r for r in records if r.type not in _AUX), None)
    first = main or records[0]
    attrs: dict[str, Any] = {"type": first.type, "records": types, "serial": first.serial}
    enriched: dict[str, str] = {}
    if main is not None:
        attrs.update(main.fields)
        enriched.update(main.enriched)
    execve_bodies: list[str] = []
    paths: list[str] = []
    for record in records:
        for key, value in record.enriched.items():
            enriched.setdefault(key, value)
        if record is main:
            continue
        rtype = record.type
        if rtype == "EXECVE":
            execve_bodies.append(record.body.partition("\x1d")[0])
        elif rtype == "PROCTITLE":
            attrs["proctitle"] = record.fields.get("proctitle", "")
        elif rtype == "PATH":
            if "name" in record.fields:
                paths.append(record.fields["name"])
        elif rtype == "CWD":
            attrs["cwd"] = record.fields.get("cwd", "")
        elif rtype == "SOCKADDR":
            attrs["saddr"] = record.fields.get("saddr", "")
            _sockaddr(attrs["saddr"], attrs)
        elif rtype != "EOE":
            for key, value in record.fields.items():
                attrs.setdefault(key, value)
    if paths:
        attrs["paths"] = paths
    for key, value in enriched.items():
        attrs.setdefault(key, value)
    for key in ("entries", "argc"):
        if key in attrs and str(attrs[key]).isdigit():
            attrs[key] = int(attrs[key])
    if node:
        attrs["node"] = node

    typeset = set(types)
    shown = first if len(records) == 1 else next((r for r in records if r.type == "NETFILTER_CFG"), first)
    message = f"{shown.type} {shown.body}".strip()
    if "EXECVE" in typeset:
        action: str | None = "process.exec"
        execve, argv = _execve_args(" ".join(execve_bodies))
        attrs["argv"] = argv
        attrs["cmdline"] = message = " ".join(argv)
        if execve.get("argc", "").isdigit():
            attrs["argc"] = int(execve["argc"])
    elif "NETFILTER_CFG" in typeset:
        action = "firewall.change"
    else:
        action = _TYPE_ACTIONS.get(first.type)

    res = attrs.get("res") or attrs.get("success")
    outcome = _OUTCOMES.get(str(res).lower()) if res is not None else None
    acct = attrs.get("acct")
    acct = None if acct in (None, "?", "(unknown)") else acct

    interpreted = "/" in first.stamp  # ausearch -i wrote names instead of ids
    auid, uid = attrs.get("auid"), attrs.get("uid")
    user_id: Any
    user_name: Any
    if auid is not None and auid not in _UNSET:
        user_id, user_name = auid, enriched.get("AUID")
    else:
        user_id, user_name = uid, enriched.get("UID")
    if interpreted:
        user_id, user_name = None, user_id
    if action in ("authenticate", "session.open", "session.close") and acct:
        user_name = acct
    addr = attrs.get("addr")
    initiator = Initiator(name=user_name, id=user_id,
                          source_ip=None if addr in (None, "?", "") else addr)

    target = None
    if action in ("service.start", "service.stop") and attrs.get("unit"):
        target = Target(type="unit", name=attrs["unit"])
    elif first.type in _DAEMON_RECORDS:
        target = Target(type="unit", name="auditd")
    elif action in ("session.open", "session.close") and acct:
        target = Target(name=acct)
    elif action in ("account.created", "account.deleted"):
        target = Target(type="user", name=acct or attrs.get("id"))

    severity = "info"
    if first.type.startswith("ANOM_") or first.type in ("SELINUX_ERR", "USER_SELINUX_ERR") or (
            first.type == "AVC" and (attrs.get("seresult") == "denied" or attrs.get("apparmor") == "DENIED")):
        severity = "warning"
    elif first.type == "DAEMON_ABORT":
        severity = "error"
    elif outcome == "failure" and action == "authenticate":
        severity = "notice"

    fields: dict[str, Any] = {
        "service": "auditd", "kind": "auditd", "severity": severity,
        "message": message[:2048], "action": action, "outcome": outcome, "initiator": initiator,
        "attrs": attrs,
    }
    if first.stamp:
        fields["time"] = record_time(first.stamp)
    if target is not None:
        fields["target"] = target
    if node:
        fields["host"] = node
    return fields


def _ref_at(ref: str, offset: int) -> str:
    """The ref of the line ``offset`` lines below the record's first line."""
    if not offset:  # the usual one-line record
        return ref
    head, _, lineno = ref.rpartition(":")
    return f"{head}:{int(lineno) + offset}" if lineno.isdigit() else ref


def _key(line: str) -> tuple[str, str, int] | None:
    """(node, timestamp, serial) of a record line, found without a regex."""
    start = line.find("audit(")
    end = line.find(")", start)
    if start < 0 or end < 0:
        return None
    stamp, _, serial = line[start + 6:end].rpartition(":")
    if not serial.isdigit():
        return None
    node = line[5:line.find(" ")] if line.startswith("node=") else ""
    return node, stamp, int(serial)


INTERLEAVE_WINDOW: Final = 32
"""How far apart two serials written in the same millisecond may be and still be framed together."""


class AuditdParser:
    """Record parser for raw audit.log (also ``ausearch --raw`` and ``ausearch -i`` output)."""

    name = "auditd"

    def __init__(self) -> None:
        self._first: tuple[str, tuple[str, str, int] | None] = ("", None)
        self._last: tuple[str, tuple[str, str, int] | None] = ("", None)  # the last line continues() keyed
        self._head: tuple[list[str], RecordHead | None] = ([], None)  # the record header() read last

    def sniff(self, line: str) -> bool:
        head = line[:5]
        return (head == "type=" or head == "node=") and "audit(" in line[:160]

    def continues(self, first: str, line: str) -> bool:
        head = line[:5]
        if head != "type=" and head != "node=":
            return line.startswith(_SEP_LINE)
        cached = self._first  # one tuple read: safe when framers share this parser
        if cached[0] is first:
            key1 = cached[1]
        else:
            last = self._last  # a record's first line was the line asked about just before
            key1 = last[1] if last[0] is first else _key(first)
            self._first = (first, key1)
        key2 = _key(line)
        self._last = (line, key2)
        if key1 is None or key2 is None or key1[1] != key2[1]:
            return False
        # same serial and stamp: one event (a 'node=' prefix may come and go within it);
        # a nearby serial in the same millisecond from the same node: interleaved events
        return key1[2] == key2[2] or (key1[0] == key2[0] and abs(key1[2] - key2[2]) <= INTERLEAVE_WINDOW)

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        groups: dict[tuple[str, int], tuple[int, list[AuditRecord], list[str]]] = {}
        junk: list[str] = []
        for index, line in enumerate(lines):
            if line.startswith(_SEP_LINE) or not line.strip():
                continue
            for text in split_records(line):
                record = parse_record(text)
                if record is None:
                    junk.append(line)
                    continue
                group = groups.setdefault((record.stamp, record.serial), (index, [], []))
                group[1].append(record)
                if not group[2] or group[2][-1] is not line:
                    group[2].append(line)
        events = []
        for offset, records, raw_lines in groups.values():
            fields = build_fields(records)
            fields.setdefault("host", ctx.host)
            events.append(Event(received=ctx.received, raw="\n".join(raw_lines), origin=ctx.origin,
                                ref=_ref_at(ctx.ref, offset), **fields))
        if junk:
            events.append(unparsed_event(junk, ctx, "auditd: not an audit record"))
        return events

    def header(self, lines: list[str], ctx: ParseContext) -> RecordHeader | None:
        """Kind, service, the action the full parse will give and the main record type
        (``attrs.type``), read from the record heads alone (parsers/base.py HeaderParser); no
        message (auditd's is built from the fields). None, for the full parse, where the
        header cannot vouch for the event: several events in the record (interleaved
        serials, joined records), a line that is not a record, an AVC or a login (their
        severity depends on fields), a ``type=`` or ``event_type=`` field in a body (one
        would replace attrs.type, the orphan ledger reads the other)."""
        head = _record_head(lines)
        self._head = (lines, head)  # one tuple: safe when framers share this parser
        if head is None:
            return None
        return "auditd", "auditd", None, head[3], (("attrs.type", head[2]),)

    def header_event(self, lines: list[str], ctx: ParseContext, record: Any, head: RecordHeader) -> Event:
        """The header event ``header`` described (fields as ``build_fields`` sets them)."""
        cached = self._head
        found = cached[1] if cached[0] is lines else _record_head(lines)  # header() just read it
        if found is None:
            raise ValueError("not a record auditd's header can vouch for")
        offset, stamp, main_type, _, node, raw_lines = found
        severity = "info"
        if main_type.startswith("ANOM_") or main_type in ("SELINUX_ERR", "USER_SELINUX_ERR"):
            severity = "warning"
        elif main_type == "DAEMON_ABORT":
            severity = "error"
        return HeaderEvent(time=record_time(stamp), received=ctx.received, host=node or ctx.host,
                           service="auditd", severity=severity, kind="auditd", raw="\n".join(raw_lines),
                           origin=ctx.origin, ref=_ref_at(ctx.ref, offset), record=record)


_NO_ACTIONS: Final[frozenset[str]] = frozenset()
_HEADER_REFUSED: Final = frozenset(("AVC", "USER_AVC"))  # their severity depends on their fields

RecordHead = tuple[int, str, str, frozenset[str], str, list[str]]
"""(offset of the first record line, stamp, main record type, actions, node, raw lines)."""


def _record_head(lines: list[str]) -> RecordHead | None:
    """What ``AuditdParser.parse`` would make of the record's framing, when it makes one
    event of it: the lines it keeps, its stamp, node, main type (``build_fields``) and action."""
    offset = -1
    key: tuple[str, str] | None = None
    node = ""
    types: list[str] = []
    raw_lines: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith(_SEP_LINE) or not line.strip():
            continue
        if line.count("audit(") >= 2 or line.count("type=") != 1:  # see AuditdParser.header
            return None
        match = _HEAD_RE.match(line)
        if match is None:
            return None
        line_node, rtype, stamp, serial = match.groups()
        if key is None:
            key, offset = (stamp, serial), index
        elif key != (stamp, serial):  # another event (or one parse would group apart)
            return None
        if rtype.startswith("UNKNOWN["):
            rtype = _TYPE_NUMBERS.get(rtype[8:-1], rtype)
        elif rtype.isdigit():
            rtype = _TYPE_NUMBERS.get(rtype, rtype)
        types.append(rtype)
        if line_node and not node:
            node = line_node
        raw_lines.append(line)
    if key is None or not key[0]:
        return None
    main_type = "SYSCALL" if "SYSCALL" in types else next((t for t in types if t not in _AUX), types[0])
    if "EXECVE" in types:
        action: str | None = "process.exec"
    elif "NETFILTER_CFG" in types:
        action = "firewall.change"
    else:
        action = _TYPE_ACTIONS.get(main_type)
    if action == "authenticate" or main_type in _HEADER_REFUSED:
        return None
    return offset, key[0], main_type, frozenset((action,)) if action else _NO_ACTIONS, node, raw_lines


class AuditdMessageParser:
    """Audit records carried by syslog/journald (audispd's syslog plugin, ``audit`` tag)."""

    name = "auditd"
    programs = frozenset({"audispd", "audit", "auditd", "audisp-syslog", "audisp", "audisp-remote"})

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        text = message.strip()
        record = parse_record(text)
        if record is None:
            # journald's audit transport: 'USER_LOGIN pid=1 uid=0 ... msg='...'' (no stamp)
            word, _, rest = text.partition(" ")
            if not (word.isupper() and "=" in rest and word.replace("_", "").isalnum()):
                return None
            fields, enriched = _fields(rest)
            record = AuditRecord("", word, "", 0, fields, enriched, rest)
            result = build_fields([record])
            del result["attrs"]["serial"]
            return result
        return build_fields([record])


PARSER = AuditdParser()
MESSAGE_PARSER = AuditdMessageParser()
