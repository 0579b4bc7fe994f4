"""Which service a log file's name names: the fallback when its records do not say.

``service_hint("nova-compute.log.1.gz")`` is ``nova-compute``, ``wsgi-keystone.log`` gives
``keystone``, a generic name (``syslog``, ``messages``) gives ``''``: its records carry their
program. Used by the archive reader (``pipeline/reader.py``) and the file tail source
(``sources/file_tail.py``), so a file read either way gets the same service. The known names
are the parsers' own (OpenStack programs, message parsers) and the usual infrastructure
daemons, which is why this lives with the parsers.
"""

from __future__ import annotations

import re
from functools import cache

# Names that say nothing about the service: the records in them carry their program.
_GENERIC_NAMES = frozenset({
    "syslog", "messages", "auth", "secure", "kern", "daemon", "user", "audit", "cron",
    "notifications", "eve", "alerts", "debug", "all", "remote", "access",
})
_ROTATION = re.compile(r"(\.(gz|log|txt|json|\d+)|[-_.]\d{8}|[-_.]\d{4}-\d{2}-\d{2}.*)$")


# Daemons an OpenStack node runs besides OpenStack's own and those the message parsers know.
_INFRASTRUCTURE = frozenset({
    "httpd", "apache2", "nginx", "haproxy", "rabbitmq", "rabbitmq-server", "mysql", "mysqld",
    "mariadb", "memcached", "libvirtd", "ovsdb-server", "ovs-vswitchd", "ovn-controller",
    "ovn-northd", "suricata", "aide", "clamav", "rkhunter", "ossec", "wazuh", "keepalived",
    "etcd", "dnsmasq", "chronyd", "ntpd", "rsyslogd", "dpkg", "yum", "dnf",
})


@cache
def known_services() -> frozenset[str]:
    """Service names a file name may carry: OpenStack's binaries and projects, the programs
    the message parsers know, the usual infrastructure daemons."""
    from stackwatch.parsers.oslo_log import KEYSTONE_PROGRAMS, OPENSTACK_PROGRAMS, PROJECT_SERVICES
    from stackwatch.parsers.registry import message_parsers

    names = OPENSTACK_PROGRAMS | frozenset(PROJECT_SERVICES) | frozenset(PROJECT_SERVICES.values()) \
        | frozenset(message_parsers()) | _INFRASTRUCTURE
    return names - KEYSTONE_PROGRAMS  # all of them are keystone


def known_service_in(stem: str) -> str:
    """The known service a file name's stem names: itself, else the longest run of its
    ``-``/``_``-separated words that is one (``wsgi-keystone``, ``keystone-ctl2``,
    ``ctl2-nova-compute``); an unknown stem is returned as it is (the best guess left)."""
    from stackwatch.parsers.oslo_log import KEYSTONE_PROGRAMS

    if stem in KEYSTONE_PROGRAMS:
        return "keystone"
    known = known_services()
    if stem in known:
        return stem
    words = re.split(r"[-_]", stem)
    for length in range(len(words) - 1, 0, -1):
        for start in range(len(words) - length + 1):
            candidate = "-".join(words[start:start + length])
            if candidate in known:
                return candidate
    return stem


def service_hint(name: str) -> str:
    """``nova-compute.log.1.gz`` -> ``nova-compute``; ``syslog`` -> ``''``."""
    stem = name
    while True:
        shorter = _ROTATION.sub("", stem)
        if shorter == stem:
            break
        stem = shorter
    stem = stem.lower()
    for suffix in ("_access", "-access", "_error", "-error"):
        if stem.endswith(suffix) and stem != suffix.strip("_-"):
            stem = stem[: -len(suffix)]
    return "" if stem in _GENERIC_NAMES or not stem else known_service_in(stem)
