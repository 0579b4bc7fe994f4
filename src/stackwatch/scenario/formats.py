"""Line formats exactly as the real programs write them.

Times are integer milliseconds since the epoch, UTC. Formatting a datetime costs a few
microseconds, so every format caches the text of the current second (a generated file
has many lines per second); caches are plain dicts, cleared when they grow.

References for each shape:
* oslo.log ``logging_context_format_string`` (STACK-NOTES §3, loghub OpenStack_2k.log):
  ``%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [%(request_id)s
  %(user_identity)s] %(instance)s%(message)s``; the newer default puts
  ``%(global_request_id)s`` first (``[None req-...``) and has six identity tokens.
* rsyslog ``RSYSLOG_TraditionalFileFormat``: ``Mar  2 10:00:00 host prog[pid]: msg``.
* Apache combined plus ``%D`` (microseconds) as keystone's vhost logs it.
* auditd raw records ``type=X msg=audit(<epoch>.<ms>:<serial>): ...``.
* oslo.messaging v2 envelope ``{"oslo.version": "2.0", "oslo.message": "<json>"}``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_CACHE_LIMIT = 8192


def _dt(sec: int) -> datetime:
    return datetime.fromtimestamp(sec, UTC)


_ISO_SEC: dict[int, str] = {}
_SYSLOG_SEC: dict[int, str] = {}
_APACHE_SEC: dict[int, str] = {}


def iso_sec(sec: int) -> str:
    """``2026-03-02 10:00:00`` (oslo.log asctime, dpkg.log, notification timestamp)."""
    text = _ISO_SEC.get(sec)
    if text is None:
        if len(_ISO_SEC) > _CACHE_LIMIT:
            _ISO_SEC.clear()
        text = _ISO_SEC[sec] = _dt(sec).strftime("%Y-%m-%d %H:%M:%S")
    return text


def syslog_sec(sec: int) -> str:
    """RFC 3164 timestamp: ``Mar  2 10:00:00`` (day padded with a space)."""
    text = _SYSLOG_SEC.get(sec)
    if text is None:
        if len(_SYSLOG_SEC) > _CACHE_LIMIT:
            _SYSLOG_SEC.clear()
        d = _dt(sec)
        text = _SYSLOG_SEC[sec] = f"{MONTHS[d.month]} {d.day:2d} {d:%H:%M:%S}"
    return text


def apache_sec(sec: int) -> str:
    """``[02/Mar/2026:10:00:00 +0000]``."""
    text = _APACHE_SEC.get(sec)
    if text is None:
        if len(_APACHE_SEC) > _CACHE_LIMIT:
            _APACHE_SEC.clear()
        d = _dt(sec)
        text = _APACHE_SEC[sec] = f"[{d.day:02d}/{MONTHS[d.month]}/{d.year}:{d:%H:%M:%S} +0000]"
    return text


def oslo(t: int, pid: int, level: str, logger: str, ctx: str, msg: str) -> str:
    """One oslo.log line; ``ctx`` is the inside of the ``[...]`` block."""
    return f"{iso_sec(t // 1000)}.{t % 1000:03d} {pid} {level} {logger} [{ctx}] {msg}"


def oslo_ctx(req: str, user: str = "-", project: str = "-", *, new: bool = False) -> str:
    """The context block. Old (loghub, Queens): ``req user project domain udomain pdomain``;
    new: ``None req user project domain system_scope udomain pdomain``."""
    if new:
        if user == "-":
            return f"None {req} - - - - - -"
        return f"None {req} {user} {project} - - default default"
    if user == "-":
        return f"{req} - - - - -"
    return f"{req} {user} {project} - - -"


def syslog(t: int, host: str, prog: str, msg: str) -> str:
    """rsyslog traditional file format; ``prog`` includes ``[pid]`` when the program logs one."""
    return f"{syslog_sec(t // 1000)} {host} {prog}: {msg}"


def apache(t: int, ip: str, method: str, path: str, status: int, size: int, agent: str, micros: int) -> str:
    """Apache combined log format followed by ``%D`` (request time in microseconds)."""
    return (
        f'{ip} - - {apache_sec(t // 1000)} "{method} {path} HTTP/1.1" {status} {size} "-" "{agent}" {micros}'
    )


def audit(t: int, serial: int, rtype: str, body: str) -> str:
    return f"type={rtype} msg=audit({t // 1000}.{t % 1000:03d}:{serial}): {body}"


def iso_utc(t: int, micros_extra: int = 0) -> str:
    """CADF eventTime / eve.json timestamp: ``2026-03-02T10:00:00.123456+0000``."""
    return f"{iso_sec(t // 1000).replace(' ', 'T')}.{t % 1000:03d}{micros_extra % 1000:03d}+0000"


def notif_ts(t: int, micros_extra: int = 0) -> str:
    """oslo.messaging ``timestamp``: ``str(timeutils.utcnow())`` -> ``2026-03-02 10:00:00.123456``."""
    return f"{iso_sec(t // 1000)}.{t % 1000:03d}{micros_extra % 1000:03d}"


def envelope(message: dict[str, Any]) -> str:
    """The messagingv2 wire envelope: the message is a JSON string inside JSON."""
    inner = json.dumps(message, separators=(", ", ": "))
    return json.dumps({"oslo.version": "2.0", "oslo.message": inner}, separators=(", ", ": "))


def compact_json(obj: dict[str, Any]) -> str:
    """eve.json style: one compact JSON object per line."""
    return json.dumps(obj, separators=(",", ":"))


def dpkg_sec(t: int) -> str:
    return iso_sec(t // 1000)


def kernel_stamp(t: int, boot_ms: int) -> str:
    """The ``[ 1234.567890]`` uptime stamp rsyslog's imklog keeps in kernel messages."""
    up = max(0, t - boot_ms)
    return f"[{up // 1000:5d}.{up % 1000:03d}{(up * 7) % 1000:03d}]"
