"""Package managers: dpkg.log, dnf.rpm.log, yum.log, and their messages via syslog.

Installs, upgrades and removals become ``package.install`` (attrs.operation says
which); bookkeeping lines (dpkg ``status``/``configure``/``trigproc``, dnf ``Upgraded:``
for the replaced package) still parse, with no action. The sniffers are strict: dpkg.log
and oslo.log both start with a date, so the word after the time decides.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from stackwatch.core.event import Event, Target
from stackwatch.parsers.base import ParseContext

_DPKG_ACTIONS = {"install": "install", "upgrade": "upgrade", "remove": "remove", "purge": "remove"}
_DPKG_WORDS = frozenset({*_DPKG_ACTIONS, "status", "configure", "trigproc", "startup", "conffile"})
_RPM_OPERATIONS = {
    "Install": "install", "Installed": "install", "Installing": "install", "Reinstall": "install",
    "Reinstalled": "install", "Upgrade": "upgrade", "Updated": "upgrade", "Upgrading": "upgrade",
    "Downgrade": "upgrade", "Erase": "remove", "Erased": "remove", "Erasing": "remove", "Remove": "remove",
    "Removed": "remove",
}
_RPM_WORDS = frozenset({*_RPM_OPERATIONS, "Upgraded", "Downgraded", "Obsoleted", "Obsoleting", "Cleanup",
                        "Reinstalling", "Verify", "Verifying"})
_YUM_WORDS = frozenset({"Installed:", "Updated:", "Erased:"})
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}
_DNF_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d{4})) "
                     r"(SUBDEBUG|DDEBUG|DEBUG|INFO|WARNING|ERROR) (.*)")
_ARCHES = frozenset({"x86_64", "noarch", "i686", "i386", "aarch64", "ppc64le", "s390x", "armv7hl", "src"})


def split_nevra(nevra: str) -> dict[str, str]:
    """'openssh-server-8.0p1-10.el8.x86_64' -> package, version, arch ('1:' epochs kept in version)."""
    text = nevra.strip()
    epoch = ""
    if ":" in text.split("-", 1)[0]:  # yum: '1:openssh-8.0-1.x86_64'
        epoch, _, text = text.partition(":")
    name_version, dot, arch = text.rpartition(".")
    if not dot or arch not in _ARCHES:
        name_version, arch = text, ""
    parts = name_version.rsplit("-", 2)
    if len(parts) < 3:
        return {"package": text}
    name, version, release = parts
    fields = {"package": name, "version": f"{epoch + ':' if epoch else ''}{version}-{release}"}
    if arch:
        fields["arch"] = arch
    return fields


def _fields(operation: str | None, attrs: dict[str, Any], service: str, text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"service": service, "message": text, "attrs": attrs}
    if operation is not None:
        attrs["operation"] = operation
        fields.update(action="package.install", outcome="success", severity="notice",
                      target=Target(type="package", name=attrs.get("package")))
    return fields


def dpkg_fields(body: str) -> dict[str, Any] | None:
    """'upgrade openssh-server:amd64 1:8.9 1:9.0' (dpkg.log without its timestamp)."""
    words = body.split()
    if not words or words[0] not in _DPKG_WORDS:
        return None
    attrs: dict[str, Any] = {"dpkg_action": words[0]}
    operation = _DPKG_ACTIONS.get(words[0])
    if words[0] == "status" and len(words) >= 4:
        package, old, new = words[2], None, words[3]
        attrs["status"] = words[1]
    elif words[0] in _DPKG_ACTIONS or words[0] in ("configure", "trigproc"):
        if len(words) < 3:
            return None
        package, old = words[1], words[2]
        new = words[3] if len(words) > 3 else old
    else:
        return _fields(None, attrs, "dpkg", body)
    name, _, arch = package.partition(":")
    attrs["package"] = name
    if arch:
        attrs["arch"] = arch
    version = old if operation == "remove" else new
    if version and version != "<none>":
        attrs["version"] = version
    if operation == "upgrade" and old and old != "<none>":
        attrs["old_version"] = old
    return _fields(operation, attrs, "dpkg", body)


def rpm_fields(body: str, service: str) -> dict[str, Any] | None:
    """'Upgrade: openssh-8.0-1.x86_64' (dnf.rpm.log, yum.log and their syslog messages)."""
    word, sep, rest = body.partition(": ")
    if not sep or word not in _RPM_WORDS or not rest.strip():
        return None
    attrs: dict[str, Any] = {"rpm_action": word, **split_nevra(rest)}
    return _fields(_RPM_OPERATIONS.get(word), attrs, service, body)


class PackageLogParser:
    """dpkg.log, dnf.rpm.log and yum.log lines (one line per record)."""

    name = "pkg"
    multiline = False  # continues() is always False: the framing need not ask

    def sniff(self, line: str) -> bool:
        if line[4:5] == "-" and line[7:8] == "-":
            if line[10:11] == " " and line[19:20] == " ":  # dpkg: '2024-01-02 10:00:00 upgrade ...'
                return line[20:].split(" ", 1)[0] in _DPKG_WORDS and line[:4].isdigit()
            if line[10:11] == "T":  # dnf.rpm.log
                return _DNF_RE.match(line) is not None
            return False
        # yum.log: 'Jan 02 10:00:00 Updated: pkg' (the 4th word decides: syslog lines have a host there)
        if line[:3] in _MONTHS and line[6:7] == " " and line[9:10] == ":":
            words = line.split(" ", 4)
            return len(words) > 4 and words[3] in _YUM_WORDS
        return False

    def continues(self, first: str, line: str) -> bool:
        return False

    def parse(self, lines: list[str], ctx: ParseContext) -> list[Event]:
        line = lines[0]
        fields: dict[str, Any] | None
        if line[10:11] == " ":
            when = datetime.fromisoformat(line[:19]).replace(tzinfo=UTC)
            fields = dpkg_fields(line[20:])
        elif line[10:11] == "T":
            match = _DNF_RE.match(line)
            if match is None:
                return []
            when = datetime.fromisoformat(match.group(1)).astimezone(UTC)
            fields = rpm_fields(match.group(3), "dnf") or {
                "service": "dnf", "message": match.group(3), "attrs": {"level": match.group(2)}}
        else:
            year = ctx.year or (ctx.last_time or ctx.received).year
            when = datetime.fromisoformat(
                f"{year}-{_MONTHS[line[:3]]:02d}-{int(line[4:6]):02d}T{line[7:15]}").replace(tzinfo=UTC)
            fields = rpm_fields(line[16:], "yum")
        if fields is None:
            return []
        return [Event(time=when, received=ctx.received, host=ctx.host, kind="pkg", raw=line,
                      origin=ctx.origin, ref=ctx.ref, **fields)]


class PackageMessageParser:
    name = "pkg"
    programs = frozenset({"yum", "dnf", "apt", "apt-get", "dpkg", "rpm", "unattended-upgrade"})

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        text = message.strip()
        service = "apt" if program.startswith("apt") else program
        if program in ("dpkg", "apt", "apt-get"):
            fields = dpkg_fields(text)
            if fields is not None:
                fields["service"] = service
                return fields
        fields = rpm_fields(text, service)
        return fields


PARSER = PackageLogParser()
MESSAGE_PARSER = PackageMessageParser()
