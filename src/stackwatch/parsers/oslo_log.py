"""oslo.log: the log format of every OpenStack service.

``2017-05-16 00:00:04.500 2931 INFO nova.compute.manager [req-… user project domain
user_domain project_domain] [instance: <uuid>] message`` with these variants:

* context blocks: old ``[req-… u p d ud pd]``, new ``[None req-… u p d scope ud pd]``,
  with a global request id ``[req-a req-b …]``, and ``[-]`` when there is no context;
* the exception prefix (``logging_exception_prefix``): traceback lines repeat
  ``<time> <pid> ERROR <logger>`` with no ``[...]`` block; they, and raw continuation
  lines (any line that does not start an oslo record), join the open record;
* outer wrappers: loghub's file-name prefix (``nova-api.log.1.2017-05-16_13:53:08 …``,
  which names the service) and the k8s/pebble form (``<iso>Z [wsgi-keystone] <time> …``);
* oslo.log through syslog (``MESSAGE_PARSER``: ``[time] [pid] LEVEL logger …``) and
  the JSONFormatter output (``from_json``).

Messages are then read by ``message_fields``: keystone semantics (keystone.py), WSGI
request lines (httpd_access.http_fields) and oslo.messaging ``log``-driver
notifications (notification.py; kind stays ``notification``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, NamedTuple

import msgspec
import orjson

from stackwatch.core.event import Event, Initiator, normalize_severity
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.cadf import parse_time
from stackwatch.parsers.httpd_access import HTTP_METHODS, client_ip, http_fields, split_request
from stackwatch.parsers.keystone import keystone_fields
from stackwatch.parsers.notification import normalize_notification, notification_fields

# k8s log time, [container], pebble's own time, then the oslo line.
_PEBBLE: Final = re.compile(
    r"\d{4}-\d\d-\d\dT[\d:.]+Z \[(?P<container>[^\]\s]+)\] \d{4}-\d\d-\d\d [\d:.]+ (?=\d{4}-)")
_INSTANCE: Final = re.compile(r"\[instance: (?P<uuid>[0-9a-fA-F\-]{36})\]")
# oslo.service wsgi: '<ip[,ip]> "GET /p HTTP/1.1" status: 200 len: 1893 time: 0.24'
# The request as split_request would split it when it has the usual three parts (the method
# is checked against its list after the match); otherwise only `request` (the same text).
_REQUEST = r'"(?P<request>(?P<method>[A-Z]+) (?P<path>[^" ]*) HTTP/[^" ]*|[^"]*)"'
_WSGI: Final = re.compile(
    r'(?P<ip>[^\s"]+) ' + _REQUEST + r' status: (?P<status>\d+)\s+len: (?P<len>\d+)\s+'
    r"time: (?P<time>[\d.]+)")
# eventlet.wsgi: '<ip[,ip]> - - [30/Sep/2025 02:36:23] "GET /p HTTP/1.1" 404 419 0.02'
_EVENTLET: Final = re.compile(
    r'(?P<ip>[^\s"]+) \S+ \S+ \[[^\]]*\] ' + _REQUEST + r' (?P<status>\d{3}) (?P<len>\d+|-) '
    r"(?P<time>[\d.]+)")
# The start of a record of another format: a syslog priority or timestamp, an ISO date, an
# auditd record, a JSON object, an access-log client address. Such a line after an oslo.log
# record is a new record (a mixed stream on stdin), never the record's traceback or message body.
_OTHER_RECORD_START: Final = re.compile(
    r'(?:<\d{1,3}>|\d{4}-\d\d-\d\d[T ]\d\d:|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d '
    r'|type=[A-Z_]+ msg=audit\(|\{"|[\d.:a-fA-F]+ \S+ \S+ \[\d\d/[A-Z][a-z]{2}/\d{4}:)')
_REQUEST_LINE: Final = re.compile(r"(?P<method>GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (?P<url>(?:https?://|/)\S*)$")
_METHOD_STARTS: Final = frozenset(("GET ", "POST", "PUT ", "DELE", "PATC", "HEAD", "OPTI"))
_NOTIFICATION_LOGGER: Final = "oslo.messaging.notification."

# logger prefix -> service, most specific first (for nova, a logger names the binary
# that runs it; a file name or ctx.service, when known, wins over this guess).
_LOGGER_SERVICES: Final[tuple[tuple[str, str], ...]] = (
    ("nova.compute", "nova-compute"), ("nova.virt", "nova-compute"),
    ("nova.osapi_compute", "nova-api"), ("nova.api", "nova-api"), ("nova.metadata", "nova-api"),
    ("nova.scheduler", "nova-scheduler"), ("nova.conductor", "nova-conductor"),
    ("nova.console", "nova-novncproxy"),
    ("neutron.agent.dhcp", "neutron-dhcp-agent"), ("neutron.agent.l3", "neutron-l3-agent"),
    ("neutron.agent.metadata", "neutron-metadata-agent"),
    ("neutron.plugins.ml2.drivers.openvswitch.agent", "neutron-openvswitch-agent"),
    ("neutron.plugins.ml2.drivers.linuxbridge.agent", "neutron-linuxbridge-agent"),
    ("cinder.volume", "cinder-volume"), ("cinder.scheduler", "cinder-scheduler"),
    ("cinder.backup", "cinder-backup"), ("cinder.api", "cinder-api"),
    ("heat.engine", "heat-engine"), ("heat.api", "heat-api"),
    ("octavia.api", "octavia-api"), ("octavia.controller.worker", "octavia-worker"),
    ("octavia.controller.healthmanager", "octavia-health-manager"),
)
PROJECT_SERVICES: Final = {
    "keystone": "keystone", "nova": "nova", "neutron": "neutron-server", "cinder": "cinder",
    "glance": "glance-api", "heat": "heat", "octavia": "octavia", "placement": "placement-api",
    "barbican": "barbican-api", "designate": "designate", "manila": "manila", "ironic": "ironic",
    "magnum": "magnum", "masakari": "masakari", "aodh": "aodh", "ceilometer": "ceilometer",
    "gnocchi": "gnocchi", "watcher": "watcher", "trove": "trove", "zun": "zun", "swift": "swift",
}


KEYSTONE_PROGRAMS: Final = frozenset(("keystone-all", "keystone-wsgi-public", "keystone-wsgi-admin"))
"""Names keystone runs under (a syslog tag, a WSGI process group): every one is keystone."""


@lru_cache(maxsize=4096)
def record_service(logger: str, hint: str) -> str:
    """The service of a record written by ``logger``; ``hint`` is the service the file name
    suggests ('' when it names none).

    The record wins: ``keystone.common.wsgi`` is keystone whatever the file is called
    (``wsgi-keystone.log``, ``foo.log``). The hint only says which of the logger's project's
    binaries wrote it (``nova.compute.api`` runs in nova-api: ``nova-api.log`` says so), and
    names the service when the logger names no known project."""
    logged = service_for_logger(logger)
    if not logged:
        return hint
    if hint and hint != logged and hint in OPENSTACK_PROGRAMS and hint not in KEYSTONE_PROGRAMS \
            and hint.partition("-")[0] == logger.partition(".")[0]:
        return hint
    return logged


@lru_cache(maxsize=4096)
def service_for_logger(logger: str) -> str:
    """``nova.compute.manager`` -> ``nova-compute``; unknown projects -> ''."""
    for prefix, service in _LOGGER_SERVICES:
        if logger == prefix or logger.startswith(prefix + "."):
            return service
    return PROJECT_SERVICES.get(logger.partition(".")[0], "")


def split_wrapper(line: str) -> tuple[str, str, str]:
    """(oslo line, service named by the wrapper, wrapper kind) for loghub/pebble-wrapped lines."""
    first = line[:1]
    if first.isdigit():
        if line[10:11] == "T" and (match := _PEBBLE.match(line)) is not None:
            container = match.group("container")
            return line[match.end():], container.removeprefix("wsgi-"), "pebble"
        return line, "", ""
    if first.isalpha():
        space = line.find(" ", 0, 120)
        if space > 0 and ".log" in line[:space] and line[space + 5:space + 6] == "-":
            return line[space + 1:], line[:line.find(".log")], "file"
    return line, "", ""


class Header(NamedTuple):
    """The fixed fields of an oslo.log line; ``time`` is the text ``fromisoformat`` reads."""

    time: str
    pid: str
    level: str
    logger: str
    rest: str


def split_header(line: str) -> Header | None:
    """``<date> <time> <pid> <LEVEL> <logger> <rest>`` (str.split: several times cheaper than a regex)."""
    if line[4:5] != "-" or line[10:11] != " " or line[13:14] != ":":
        return None
    parts = line.split(" ", 5)
    if len(parts) < 6:
        if len(parts) < 5:
            return None
        parts.append("")
    date, clock, pid, level, logger, rest = parts
    # the usual level names first: a set look-up instead of two str method calls
    if not (pid.isdigit() and (level in _LEVELS or (level.isalpha() and level.isupper())) and len(date) == 10
            and date[:4].isdigit() and logger[:1] != "["):
        return None
    if "," in clock:  # asctime without datefmt: '07:11:47,013.013'
        stamp = f"{date} {clock.partition(',')[0]}.{clock.rpartition('.')[2]}"
    elif len(clock) <= 15:  # '<date> <clock>' is the line's start
        stamp = line[:11 + len(clock)]
    else:  # fromisoformat takes at most 6 digits (15 chars)
        stamp = line[:26]
    # tuple.__new__: a NamedTuple's own constructor is a Python-level call (~0.3 µs a line)
    return _new_tuple(Header, (stamp, pid, level, logger, rest))


_new_tuple: Final = tuple.__new__
_LEVELS: Final = frozenset(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "TRACE", "AUDIT"))


def _header_of(line: str) -> tuple[Header | None, str, str]:
    body, service, wrapper = split_wrapper(line)
    return split_header(body), service, wrapper


def _has_context_block(rest: str) -> bool:
    return rest[:1] == "[" and not rest.startswith("[instance: ")


_SECONDS: Final[dict[str, datetime]] = {}


def record_time(text: str) -> datetime:
    """``2017-05-16 00:00:00.008`` -> aware UTC.

    ``fromisoformat`` with an explicit ``+00:00`` is the fast path (~0.3 µs; ``replace`` costs
    ~1.5 µs); anything it refuses takes the original route, so results never change."""
    try:
        return datetime.fromisoformat(text + "+00:00")
    except ValueError:
        return _record_time_slow(text)


def _record_time_slow(text: str) -> datetime:
    second, _, fraction = text.partition(".")
    base = _SECONDS.get(second)
    if base is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        base = _SECONDS[second] = datetime.fromisoformat(second).replace(tzinfo=UTC)
    if not fraction:
        return base
    return base.replace(microsecond=int(fraction[:6].ljust(6, "0")))


_IDENTITY_5: Final = ("user", "project", "domain", "user_domain", "project_domain")
_IDENTITY_6: Final = ("user", "project", "domain", "system_scope", "user_domain", "project_domain")
_NONE_TOKENS: Final = frozenset(("-", "None", ""))


def parse_context(block: str) -> dict[str, str]:
    """The context block's tokens: request_id, global_request_id, user, project, domain,
    [system_scope,] user_domain, project_domain; '-' and 'None' are left out."""
    if block.endswith(" - - - - -") and block.count(" ") == 5:  # the common 'no user' block
        return {"request_id": block[:-10]} if block[:4] == "req-" else {}
    tokens = block.split()
    if not tokens:
        return {}
    out: dict[str, str] = {}
    first = tokens[0]
    if len(tokens) > 1 and (first == "None" or (first[:4] == "req-" and tokens[1][:4] == "req-")):
        if first != "None":
            out["global_request_id"] = first
        if tokens[1] not in _NONE_TOKENS:
            out["request_id"] = tokens[1]
        identity = tokens[2:]
    elif first[:4] == "req-":
        out["request_id"] = first
        identity = tokens[1:]
    else:
        identity = tokens
    for name, value in zip(_IDENTITY_6 if len(identity) >= 6 else _IDENTITY_5, identity, strict=False):
        if value not in _NONE_TOKENS:
            out[name] = value
    return out


_NO_IDENTITY: Final = Initiator()
_CONTEXT_ATTRS: Final = ("global_request_id", "user_domain", "project_domain", "system_scope")
Identity = tuple[Initiator, tuple[tuple[str, str], ...]]
_IDENTITIES: Final[dict[str, Identity]] = {}


def _identity_of(context: dict[str, str]) -> Identity:
    """The initiator and the attrs (in ``_CONTEXT_ATTRS`` order) a parsed block gives."""
    get = context.get
    initiator = Initiator(id=get("user"), project=get("project"), domain=get("domain"))
    return initiator, tuple((key, context[key]) for key in _CONTEXT_ATTRS if context.get(key))


def context_fields(block: str) -> tuple[str | None, Initiator, tuple[tuple[str, str], ...]]:
    """(request_id, initiator, extra attrs) of a context block: ``parse_context`` read into
    Event fields. A request id is unique but the identity after it repeats (one user makes
    many requests), so the identity part is parsed once per distinct text and cached."""
    if block.endswith(" - - - - -") and block.count(" ") == 5:  # the common 'no user' block
        return (block[:-10] if block[:4] == "req-" else None), _NO_IDENTITY, ()
    if block == "-":  # '[-]': no context at all
        return None, _NO_IDENTITY, ()
    first, _, tail = block.partition(" ")
    if first == "None" and tail[:4] == "req-":  # the new form without a global request id
        first, _, tail = tail.partition(" ")
    # Only for a plain '[None ]<req-id> <identity>' block (single spaces, no other whitespace),
    # where parse_context's tokens are exactly these and tail.split(): the key decides all.
    if first[:4] == "req-" and tail[:4] != "req-":
        identity = _IDENTITIES.get(tail)
        # A cached tail passed the check below (printable, no double or leading space), so only
        # the request id is left to check (first has no space: it was cut at one).
        if identity is not None and first.isprintable():
            return first, identity[0], identity[1]
        if identity is None and "  " not in block and block.isprintable():
            if len(_IDENTITIES) >= 4096:
                _IDENTITIES.clear()
            identity = _IDENTITIES[tail] = _identity_of(parse_context(block))
            return first, identity[0], identity[1]
    context = parse_context(block)
    initiator, attrs = _identity_of(context)
    return context.get("request_id"), initiator, attrs


def _merge_initiator(base: Initiator, extra: Initiator | None) -> Initiator:
    if extra is None:
        return base
    return Initiator(
        name=extra.name or base.name,
        id=extra.id or base.id,
        project=extra.project or base.project,
        domain=extra.domain or base.domain,
        source_ip=extra.source_ip or base.source_ip,
        user_agent=extra.user_agent or base.user_agent,
    )


def wsgi_fields(message: str) -> dict[str, Any] | None:
    """Fields of a WSGI request line (oslo.service wsgi, eventlet.wsgi, keystone 'POST http://…')."""
    # literal gates: each regex needs its literal ('" status: ' / '] "'); keystone's
    # 'GET http://...' lines have neither and go straight to the request-line form
    match = ((_WSGI.match(message) if '" status: ' in message else None)
             or (_EVENTLET.match(message) if '] "' in message else None))
    if match is not None:
        ip, request, method, path, status, size, duration = match.groups()
        if method is None or method not in HTTP_METHODS:
            method, path, _ = split_request(request)
        # eventlet logs 'X-Forwarded-For,REMOTE_ADDR': REMOTE_ADDR is the proxy, and of the
        # header the last address is the one the proxy saw (client_ip); the first is whatever the
        # client wrote in the header itself, which anyone can forge
        fields = http_fields(method, path, int(status), int(size) if size != "-" else None,
                             float(duration), client_ip(ip.rsplit(",", 1)[0]))
        if "," in ip:
            fields["attrs"]["forwarded_for"] = ip
        return fields
    match = _REQUEST_LINE.match(message)
    if match is not None:
        url = match.group("url")
        path = "/" + url.split("/", 3)[3] if url.startswith("http") and url.count("/") >= 3 else url
        fields = http_fields(match.group("method"), path, None, None, None)
        fields["attrs"]["url"] = url
        return fields
    return None


MESSAGE_FIELD_KEYS = frozenset(("action", "outcome", "severity", "initiator", "target", "attrs", "service"))
"""The keys ``message_fields`` may return (OsloLogParser.parse reads exactly these)."""


def message_fields(logger: str, message: str) -> dict[str, Any] | None:
    """Contract fields read from one message's first line (keystone, WSGI), or None; only
    MESSAGE_FIELD_KEYS."""
    if logger.startswith("keystone"):
        fields = keystone_fields(logger, message)
        if fields is not None:
            return fields
    if ('"' in message and "HTTP/" in message) or message[:4] in _METHOD_STARTS:
        return wsgi_fields(message)
    return None


_KEYSTONE_MESSAGES: Final[dict[tuple[str, str], dict[str, Any] | None]] = {}


def _shared_message_fields(logger: str, message: str) -> dict[str, Any] | None:
    """``message_fields`` for a reader that never changes the result (OsloLogParser.parse).

    keystone writes the same few messages over and over ('POST http://…/v3/auth/tokens': 106
    distinct in the 9,400 lines of the benchmark corpus), so keystone's are read once per
    distinct text (bounded); other loggers' messages are cheap to read or never repeat (WSGI
    lines carry the client, size and time)."""
    if not logger.startswith("keystone"):
        return message_fields(logger, message)
    key = (logger, message)
    try:
        return _KEYSTONE_MESSAGES[key]
    except KeyError:
        if len(_KEYSTONE_MESSAGES) >= 1024:
            _KEYSTONE_MESSAGES.clear()
        fields = _KEYSTONE_MESSAGES[key] = message_fields(logger, message)
        return fields


_LEVEL_SEVERITIES: Final[dict[str, str]] = {}


def _severity(level: str) -> str:
    severity = _LEVEL_SEVERITIES.get(level)
    if severity is None:  # a handful of level names per file: remembered, bounded anyway
        if len(_LEVEL_SEVERITIES) >= 256:
            _LEVEL_SEVERITIES.clear()
        severity = _LEVEL_SEVERITIES[level] = normalize_severity(level)
    return severity


class OsloLogParser:
    name = "oslo_log"

    def __init__(self) -> None:
        # One-entry caches, checked by identity (``is``) so a stale entry is never used:
        self._first: tuple[str, str, str] = ("", "", "")  # (first line, pid, logger) for continues
        self._cache: dict[str, tuple[Header | None, str, str]] = {}

    def _split(self, line: str) -> tuple[Header | None, str, str]:
        # A line is split by continues(), sniff() and parse(), and files are read interleaved
        # (time-ordered merge), so a small cache keyed by the line text itself saves two splits
        # of three. Keyed by content, a hit is always right.
        cache = self._cache
        split = cache.get(line)
        if split is None:
            if len(cache) >= 64:
                cache.clear()
            if line[:1].isdigit() and line[10:11] != "T":  # unwrapped: split_wrapper's no-op case
                split = cache[line] = (split_header(line), "", "")
            else:
                split = cache[line] = _header_of(line)
        return split

    def sniff(self, line: str) -> bool:
        return self._split(line)[0] is not None

    def continues(self, first: str, line: str) -> bool:
        if not line or line.isspace():
            return False
        header = self._split(line)[0]
        if header is None:  # traceback / multi-line message body, unless another format's record
            return _OTHER_RECORD_START.match(line) is None
        if _has_context_block(header[4]):
            return False  # a new record (every normal record has a block, '[-]' at least)
        cached = self._first
        if cached[0] is not first:
            first_header = self._split(first)[0]
            if first_header is None:
                return False
            cached = self._first = (first, first_header.pid, first_header.logger)
        # Exception-prefix lines: same process and logger, and no context block.
        return header.pid == cached[1] and header.logger == cached[2]

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        header, wrapper_service, wrapper = self._split(lines[0])
        if header is None:
            raise ValueError("not an oslo.log line")
        timestamp, pid, level, logger, rest = header
        time = record_time(timestamp)
        request_id: str | None = None
        initiator = _NO_IDENTITY
        attrs: dict[str, Any] = {"pid": int(pid), "logger": logger}
        message = rest
        if _has_context_block(rest):
            end = rest.find("]")
            if end > 0:
                request_id, initiator, context_attrs = context_fields(rest[1:end])
                if context_attrs:
                    attrs.update(context_attrs)
                message = rest[end + 2:] if rest[end + 1:end + 2] == " " else rest[end + 1:]
        if len(lines) > 1:
            message = "\n".join([message, *(_continuation_text(line, pid, logger) for line in lines[1:])])
        raw = "\n".join(lines)
        first_line = message.partition("\n")[0]
        if "[instance: " in message and (instance := _INSTANCE.search(message)) is not None:
            attrs["instance"] = instance.group("uuid")
        if wrapper:
            if wrapper == "file":
                attrs["log_file"] = lines[0][:lines[0].find(" ")]
            elif wrapper == "pebble":
                attrs["container"] = lines[0][lines[0].find("[") + 1:lines[0].find("]")]
        service = wrapper_service or record_service(logger, ctx.service)

        if first_line[:1] == "{" and logger.startswith(_NOTIFICATION_LOGGER):
            events = _notification_events(first_line, raw, ctx, wrapper_service, attrs)
            if events:
                return events
        extra = _shared_message_fields(logger, first_line)
        if extra is None:
            return [Event(time=time, received=ctx.received, host=ctx.host, service=service or "",
                          severity=_severity(level), message=message, kind="oslo_log",
                          request_id=request_id, initiator=initiator, attrs=attrs, raw=raw,
                          origin=ctx.origin, ref=ctx.ref)]
        # Keywords read key by key (MESSAGE_FIELD_KEYS), not Event(**fields): a call through a
        # dict costs ~0.5 µs more. CPython compiles a call with more than 15 keywords the same
        # way (its stack-use guideline), so the rare target is set apart instead of passed.
        initiator = _merge_initiator(initiator, extra.get("initiator"))
        extra_attrs = extra.get("attrs")
        if extra_attrs:
            attrs.update(extra_attrs)
        implied = extra.get("service")  # e.g. keystone for POST /v3/auth/tokens
        if implied and not service:
            service = implied
        event = Event(time=time, received=ctx.received, host=ctx.host, service=service or "",
                      severity=extra.get("severity", _severity(level)), message=message, kind="oslo_log",
                      action=extra.get("action"), outcome=extra.get("outcome"), initiator=initiator,
                      request_id=request_id, attrs=attrs, raw=raw, origin=ctx.origin, ref=ctx.ref)
        target = extra.get("target")
        return [event if target is None else msgspec.structs.replace(event, target=target)]


def _continuation_text(line: str, pid: str, logger: str) -> str:
    """A joined line without its exception prefix (``<time> <pid> ERROR <logger> ``)."""
    header = _header_of(line)[0]
    if header is not None and header.pid == pid and header.logger == logger:
        return header.rest
    return line


def _notification_events(body: str, raw: str, ctx: ParseContext, service: str,
                         attrs: dict[str, Any]) -> list[Event] | None:
    """An oslo.messaging ``log``-driver notification: the JSON message, normalised. Its
    publisher names the service; ``service`` (a wrapper's container name) overrides it."""
    try:
        msg = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # a truncated notification stays a plain oslo_log event
    if not isinstance(msg, dict):
        return None
    events = normalize_notification(msg, raw, ctx)
    out = []
    for event in events:
        changes: dict[str, Any] = {"attrs": {**event.attrs, **attrs}}
        if service:
            changes["service"] = service
        out.append(msgspec.structs.replace(event, **changes))
    return out


PARSER = OsloLogParser()


# --- oslo.log through syslog ---------------------------------------------------------

_SYSLOG_BODY: Final = re.compile(
    r"(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)* )?(?:(?P<pid>\d+) )?"
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL|TRACE|AUDIT) (?P<logger>[^\s\[]+) ?(?P<rest>.*)",
    re.DOTALL,
)

OPENSTACK_PROGRAMS: Final = frozenset((
    "keystone", "keystone-all", "keystone-wsgi-public", "keystone-wsgi-admin", "keystone-manage",
    "nova-api", "nova-api-metadata", "nova-compute", "nova-scheduler", "nova-conductor", "nova-novncproxy",
    "nova-spicehtml5proxy", "nova-serialproxy", "nova-consoleauth", "nova-manage",
    "neutron-server", "neutron-openvswitch-agent", "neutron-linuxbridge-agent", "neutron-dhcp-agent",
    "neutron-l3-agent", "neutron-metadata-agent", "neutron-ovn-metadata-agent", "neutron-sriov-nic-agent",
    "neutron-rpc-server", "neutron-periodic-workers",
    "cinder-api", "cinder-volume", "cinder-scheduler", "cinder-backup",
    "glance-api", "glance-registry",
    "heat-api", "heat-api-cfn", "heat-engine",
    "placement-api", "octavia-api", "octavia-worker", "octavia-health-manager", "octavia-housekeeping",
    "barbican-api", "barbican-worker", "designate-api", "designate-central", "designate-worker",
    "manila-api", "manila-share", "manila-scheduler", "ironic-api", "ironic-conductor",
    "magnum-api", "magnum-conductor", "aodh-evaluator", "aodh-notifier", "aodh-listener",
    "ceilometer-agent-notification", "ceilometer-polling", "masakari-api", "masakari-engine",
))


class OsloSyslogMessageParser:
    """oslo.log records written through syslog (``use_syslog``): ``[time] [pid] LEVEL logger [ctx] msg``."""

    name = "oslo_log"
    programs = OPENSTACK_PROGRAMS

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        match = _SYSLOG_BODY.match(message)
        if match is None:
            return None
        pid, level, logger, rest = match.group("pid", "level", "logger", "rest")
        context: dict[str, str] = {}
        body = rest
        if _has_context_block(rest) and (end := rest.find("]")) > 0:
            context = parse_context(rest[1:end])
            body = rest[end + 1:].lstrip(" ")
        attrs: dict[str, Any] = {"logger": logger}
        if pid:
            attrs["pid"] = int(pid)
        if context.get("global_request_id"):
            attrs["global_request_id"] = context["global_request_id"]
        if (instance := _INSTANCE.search(body)) is not None:
            attrs["instance"] = instance.group("uuid")
        if logger.startswith(_NOTIFICATION_LOGGER) and body[:1] == "{":
            try:
                msg = orjson.loads(body)
            except orjson.JSONDecodeError:
                msg = None
            if isinstance(msg, dict):
                fields = notification_fields(msg)
                fields["attrs"] = {**fields["attrs"], **attrs}
                fields["kind"] = "notification"
                if not fields.get("host"):
                    fields.pop("host", None)
                fields["service"] = program
                return fields
        fields = {
            "severity": normalize_severity(level),
            "message": body,
            "request_id": context.get("request_id"),
            "initiator": Initiator(id=context.get("user"), project=context.get("project"),
                                   domain=context.get("domain")),
            "attrs": attrs,
        }
        extra = message_fields(logger, body.partition("\n")[0])
        if extra:
            fields["initiator"] = _merge_initiator(fields["initiator"], extra.pop("initiator", None))
            attrs.update(extra.pop("attrs", {}))
            extra.pop("service", None)  # the syslog program names the service
            fields.update(extra)
        return fields


MESSAGE_PARSER = OsloSyslogMessageParser()


# --- oslo.log JSONFormatter ----------------------------------------------------------

def _first_text(mapping: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = mapping.get(key)
        if value not in (None, "", "-") and not isinstance(value, dict | list):
            return str(value)
    return None


def from_json(obj: dict[str, Any], raw: str, ctx: ParseContext) -> list[Event] | None:
    """One record of oslo.log's JSONFormatter (message, name, levelname, context{...})."""
    if not ("levelname" in obj and "name" in obj and "message" in obj):
        return None
    logger = str(obj.get("name") or "")
    message = str(obj.get("message") or "")
    raw_context = obj.get("context")
    context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
    created = obj.get("created")
    time = (datetime.fromtimestamp(created, UTC) if isinstance(created, int | float)
            else parse_time(obj.get("asctime"))) or ctx.received
    attrs: dict[str, Any] = {"logger": logger}
    if isinstance(obj.get("process"), int):
        attrs["pid"] = obj["process"]
    if gri := _first_text(context, "global_request_id"):
        attrs["global_request_id"] = gri
    traceback = obj.get("traceback")
    if traceback:
        attrs["traceback"] = "\n".join(traceback) if isinstance(traceback, list) else str(traceback)
    if (instance := _INSTANCE.search(message)) is not None:
        attrs["instance"] = instance.group("uuid")
    elif isinstance(obj.get("extra"), dict) and (uuid := _first_text(obj["extra"], "instance_uuid")):
        attrs["instance"] = uuid
    service = record_service(logger, ctx.service)
    if logger.startswith(_NOTIFICATION_LOGGER) and message[:1] == "{":
        events = _notification_events(message, raw, ctx, "", attrs)
        if events:
            return events
    fields: dict[str, Any] = {
        "severity": normalize_severity(str(obj.get("levelname") or "")),
        "request_id": _first_text(context, "request_id"),
        "initiator": Initiator(
            name=_first_text(context, "user_name"),
            id=_first_text(context, "user_id", "user"),
            project=_first_text(context, "project_id", "project", "tenant"),
            domain=_first_text(context, "domain_id", "domain", "user_domain_id", "user_domain"),
        ),
    }
    extra = message_fields(logger, message.partition("\n")[0])
    if extra:
        fields["initiator"] = _merge_initiator(fields["initiator"], extra.pop("initiator", None))
        attrs.update(extra.pop("attrs", {}))
        implied = extra.pop("service", None)
        if implied and not service:
            service = implied
        fields.update(extra)
    return [Event(time=time, received=ctx.received, host=_first_text(obj, "hostname") or ctx.host,
                  service=service, message=message, kind="oslo_log", attrs=attrs, raw=raw,
                  origin=ctx.origin, ref=ctx.ref, **fields)]
