"""HAProxy's HTTP log (``option httplog``), as it reaches syslog from the proxy in front of every
OpenStack API (Kolla-Ansible, OpenStack-Ansible, TripleO all put HAProxy there)::

    127.0.0.2:41234 [06/Dec/2026:20:40:00.123] keystone_front keystone_back/ks1 0/0/1/195/196 401 337
    - - ---- 1/1/0/0/0 0/0 "POST /v3/auth/tokens HTTP/1.1"

(one message). The client address here is the TCP peer: the real client, where the API behind
sees only the proxy (or the X-Forwarded-For the proxy added). Timers are ``TR/Tw/Tc/Tr/Ta``
(``Tq/Tw/Tc/Tr/Tt`` before 1.9), in milliseconds, ``-1`` for a step never reached; the accept
date has milliseconds and no zone (read as UTC, as every zone-less format here). Optional
captured headers (``{...}``) come before the request. ``http_fields`` gives the meaning, so a
keystone login refused here is the same ``authenticate`` failure the API's own logs report;
kind ``haproxy`` keeps it a channel of its own for the correlation of copies.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from stackwatch.core.event import Initiator
from stackwatch.parsers.httpd_access import http_fields, parse_clf_time, split_request

_HTTPLOG = re.compile(
    r"(?P<ip>[\w.:]+):(?P<port>\d+) \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d)(?:\.(?P<ms>\d+))?\] "
    r"(?P<frontend>\S+) (?P<backend>[^/\s]+)/(?P<server>\S+) "
    r"(?P<timers>-?\d+/-?\d+/-?\d+/-?\d+/\+?-?\d+) (?P<status>-?\d+) \+?(?P<bytes>\d+) \S+ \S+ "
    r"(?P<termination>\S{4}) [\d/+]+ [\d/]+ (?:\{[^}]*\} )*\"(?P<request>[^\"]*)\"?"
)


class HaproxyMessageParser:
    name = "haproxy"
    programs = frozenset({"haproxy"})
    memoizable = True  # a message's fields depend on its text alone

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        match = _HTTPLOG.match(message)
        if match is None:
            return None  # start-up, health-check and TCP-mode messages say nothing here
        method, path, protocol = split_request(match["request"])
        status = int(match["status"])
        total = match["timers"].rpartition("/")[2].lstrip("+")
        fields = http_fields(method, path, status if status > 0 else None, int(match["bytes"]),
                             int(total) / 1000 if not total.startswith("-") else None)
        time = parse_clf_time(match["time"])
        if match["ms"]:
            time += timedelta(milliseconds=int(match["ms"][:3]))
        attrs = fields["attrs"]
        attrs.update(frontend=match["frontend"], backend=match["backend"], server=match["server"],
                     termination_state=match["termination"], client_port=int(match["port"]))
        if protocol:
            attrs["protocol"] = protocol
        fields.update(kind="haproxy", time=time, initiator=Initiator(source_ip=match["ip"]),
                      severity="warning" if status >= 500 else "info")
        return fields


MESSAGE_PARSER = HaproxyMessageParser()
