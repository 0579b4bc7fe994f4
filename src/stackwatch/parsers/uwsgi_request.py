"""uWSGI's request log: how OpenStack-Ansible's API services (keystone first) log each request.

uWSGI's default request-log format, one line per request::

    [pid: 30044|app: 0|req: 6/5] 127.0.0.2 () {30 vars in 399 bytes} [Sun Dec  6 20:26:37 2026]
    POST /v3/auth/tokens => generated 109 bytes in 195 msecs (HTTP/1.1 401) 5 headers in 228 bytes
    (2 switches on core 0)

(one line in the file). The address is REMOTE_ADDR, or the X-Forwarded-For header as the
proxy sent it with ``log-x-forwarded-for`` (``client_ip`` picks the address the proxy saw);
``(user)`` is REMOTE_USER; the time is the request's start in the server's local time with
no zone (read as UTC, as every zone-less format here). ``http_fields`` gives the meaning:
``POST /v3/auth/tokens`` answered 401 is a failed keystone login.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from stackwatch.core.event import NO_INITIATOR, Event, Initiator
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.httpd_access import client_ip, http_fields

_LINE = re.compile(
    r"\[pid: (?P<pid>\d+)\|app: (?P<app>-?\d+)\|req: (?P<req>[\d-]+/\d+)\] (?P<addr>.*?) "
    r"\((?P<user>[^)]*)\) \{\d+ vars in \d+ bytes\} "
    r"\[(?P<time>\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\] "
    r"(?P<method>\S+) (?P<uri>.*?) => generated (?P<size>\d+) bytes in (?P<took>\d+) (?P<unit>msecs|micros) "
    r"\((?P<protocol>\S+) (?P<status>\d{3})\)"
)


def request_time(text: str) -> datetime:
    """``Sun Dec  6 20:26:37 2026`` (asctime) -> aware UTC."""
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)


class UwsgiRequestParser:
    name = "uwsgi_request"
    multiline = False

    def sniff(self, line: str) -> bool:
        return line.startswith("[pid: ") and " => generated " in line and _LINE.match(line) is not None

    def continues(self, first: str, line: str) -> bool:
        return False

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        match = _LINE.match(lines[0])
        if match is None:
            raise ValueError("not a uWSGI request log line")
        took = int(match["took"]) / (1e3 if match["unit"] == "msecs" else 1e6)
        addr = match["addr"]
        fields = http_fields(match["method"], match["uri"], int(match["status"]), int(match["size"]), took,
                             client_ip(addr) if addr else None)
        attrs = fields["attrs"]
        attrs["protocol"] = match["protocol"]
        attrs["pid"] = int(match["pid"])
        if "," in addr:
            attrs["forwarded_for"] = addr
        initiator = fields.get("initiator", NO_INITIATOR)
        if match["user"]:
            initiator = Initiator(name=match["user"], source_ip=initiator.source_ip)
        status = int(match["status"])
        return [Event(
            time=request_time(match["time"]), received=ctx.received, host=ctx.host,
            service=fields.get("service", ctx.service or "uwsgi"),
            severity="warning" if status >= 500 else "info",
            message=f"{match['method']} {match['uri']} {status}", kind="uwsgi_request",
            action=fields["action"], outcome=fields.get("outcome"), initiator=initiator, attrs=attrs,
            raw="\n".join(lines), origin=ctx.origin, ref=ctx.ref,
        )]


PARSER = UwsgiRequestParser()
