"""Sigma rules (real SigmaHQ Linux rules, tests/detect/sigma_rules/) compiled into predicates.

The events are built the way production builds them: auditd text through the real parser
(``parse_text``); sshd syslog events with ``make_event`` (their parser is separate work).
The cross-check at the end runs the same rules through pySigma-backend-sqlite's SQL over an
in-memory SQLite table of the same events and requires identical hit counts per rule.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from sigma.collection import SigmaCollection

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.model import Rule
from stackwatch.detect.sigma import compile_sigma, fulltext, load_sigma_file
from stackwatch.detect.sigma_sql import backend, count_hits, load_table
from stackwatch.parsers.framing import parse_text
from stackwatch.testing import make_event

RULES = Path(__file__).parent / "sigma_rules"
SUPPORTED = sorted(RULES.glob("*.yml"))

MODIFY_FW = "323ff3f5-0013-4847-bbd4-250b5edb62cc"
DISABLE_FW = "53059bc0-1472-438b-956a-7508a94a91f0"
FLUSH_UFW = "3be619f4-d9ec-4ea8-a173-18fdd01996ab"
REBOOT = "4cb57c2f-1f29-41f8-893d-8bed8e1c1d2f"
SSHD_ERROR = "e76b413a-83d0-4b94-8e4c-85db4a5b8bdc"
PADDING = "c52a914f-3d8b-4b2a-bb75-b3991e75f8ba"
INODES = "43e26eb5-cd58-48d1-8ce9-a273f5d298d8"


@pytest.fixture(scope="module")
def rules() -> dict[str, Rule]:
    return {rule.id: rule for path in SUPPORTED for rule in load_sigma_file(path)}


# --------------------------------------------------------------------------- event builders

_serial = iter(range(1000, 10_000_000))


def _audit_value(text: str) -> str:
    # auditd writes a value with a space, quote or non-ASCII byte as bare upper-case hex
    if re.fullmatch(r'[\x21-\x7e]+', text) and '"' not in text:
        return f'"{text}"'
    return text.encode().hex().upper()


def execve(argv: list[str], exe: str, host: str = "node1") -> Event:
    serial = next(_serial)
    stamp = f"audit(1700000000.{serial % 1000:03d}:{serial})"
    comm = exe.rsplit("/", 1)[-1][:15]
    args = " ".join(f"a{i}={_audit_value(arg)}" for i, arg in enumerate(argv))
    text = (f"type=SYSCALL msg={stamp}: arch=c000003e syscall=59 success=yes exit=0 a0=55d5 a1=55d6 "
            f"a2=55d7 a3=0 items=2 ppid=1 pid={serial} auid=1000 uid=0 gid=0 euid=0 ses=3 tty=pts0 "
            f'comm="{comm}" exe="{exe}" key="exec"\n'
            f"type=EXECVE msg={stamp}: argc={len(argv)} {args}\n")
    [event] = parse_text(text, host=host)
    assert event.kind == "auditd" and event.attrs["argv"] == argv, event
    return event


def service_stop(unit: str) -> Event:
    serial = next(_serial)
    text = (f"type=SERVICE_STOP msg=audit(1700000000.{serial % 1000:03d}:{serial}): pid=1 uid=0 "
            f"auid=4294967295 ses=4294967295 msg='unit={unit} comm=\"systemd\" "
            f"exe=\"/usr/lib/systemd/systemd\" hostname=? addr=? terminal=? res=success'\n")
    [event] = parse_text(text, host="node1")
    return event


def sshd(message: str, service: str = "sshd") -> Event:
    raw = f"Nov 27 08:41:02 node1 {service}[2213]: {message}"
    return make_event(kind="syslog", service=service, host="node1", message=message, raw=raw)


def hits(rules: dict[str, Rule], event: Event) -> set[str]:
    return {rule.id for rule in rules.values() if rule.condition(event)}


# --------------------------------------------------------------------------- loading and mapping


@pytest.mark.parametrize(("rule_id", "category", "severity", "index"), [
    (MODIFY_FW, "firewall.flush", "medium", {"kind": {"auditd"}}),
    (DISABLE_FW, "firewall.flush", "high", {"kind": {"auditd"}}),
    (FLUSH_UFW, "firewall.flush", "medium", {"kind": {"auditd"}, "action": {"process.exec"}}),
    (REBOOT, "os.restart", "low", {"kind": {"auditd"}}),
    (SSHD_ERROR, "ids.alert", "medium", {"service": {"sshd"}}),
    (PADDING, "ids.alert", "high", {"kind": {"auditd"}}),
    (INODES, "ids.alert", "low", {"kind": {"auditd"}, "action": {"process.exec"}}),
])
def test_sigma_rule_maps_to_category_severity_and_index(rules, rule_id, category, severity, index):
    rule = rules[rule_id]
    assert (rule.kind, rule.category, rule.severity) == ("match", category, severity)
    assert {dim: set(values) for dim, values in rule.index.items()} == index
    assert rule.source.endswith(".yml") and rule.line > 0


def test_sigma_rule_keeps_title_references_and_tags(rules):
    rule = rules[FLUSH_UFW]
    assert rule.title == "Flush Iptables Ufw Chain"
    assert "https://www.cyberciti.biz/tips/linux-iptables-how-to-flush-all-rules.html" in rule.references
    assert "attack.t1562.004" in rule.tags


# --------------------------------------------------------------------------- which rules hit


@pytest.mark.parametrize(("event", "expected"), [
    (lambda: execve(["ufw", "delete", "allow", "22"], "/usr/sbin/ufw"), {MODIFY_FW}),
    (lambda: execve(["firewall-cmd", "--remove-port=22/tcp"], "/usr/bin/firewall-cmd"), {MODIFY_FW}),
    (lambda: execve(["iptables", "DROP-ALL"], "/usr/sbin/iptables"), {MODIFY_FW}),
    (lambda: execve(["iptables", "-A", "INPUT", "-j", "DROP"], "/usr/sbin/iptables"), set()),
    (lambda: service_stop("firewalld"), {DISABLE_FW}),
    (lambda: service_stop("nova-compute"), set()),
    (lambda: execve(["iptables", "-F", "ufw-logging-deny"], "/usr/sbin/iptables"), {FLUSH_UFW}),
    (lambda: execve(["ip6tables", "-X", "ufw6-logging-allow"], "/usr/sbin/ip6tables"), {FLUSH_UFW}),
    (lambda: execve(["iptables", "-F", "ufw-logging-deny"], "/usr/sbin/xtables-nft-multi"), set()),
    (lambda: execve(["shutdown", "-r", "now"], "/usr/sbin/shutdown"), {REBOOT}),
    (lambda: execve(["telinit", "6"], "/usr/sbin/telinit"), {REBOOT}),
    (lambda: execve(["truncate", "-s", "+1M", "/tmp/implant"], "/usr/bin/truncate"), {PADDING}),
    (lambda: execve(["dd", "if=/dev/zero", "bs=1", "count=1"], "/usr/bin/dd"), {PADDING}),
    (lambda: execve(["dd", "if=/dev/sda", "of=/backup.img"], "/usr/bin/dd"), set()),
    (lambda: execve(["ls", "-id", "/"], "/usr/bin/ls"), {INODES}),
    (lambda: execve(["ls", "--inode", "--directory", "/"], "/usr/bin/ls"), {INODES}),
    (lambda: execve(["ls", "-la", "/"], "/usr/bin/ls"), set()),
    (lambda: sshd("Corrupted MAC on input. [preauth]"), {SSHD_ERROR}),
    (lambda: sshd("error: key_from_blob: invalid elliptic curve VALUE"), {SSHD_ERROR}),
    (lambda: sshd("Corrupted MAC on input.", service="nova-api"), set()),
    (lambda: sshd("Accepted publickey for ubuntu from 10.0.0.5 port 50022 ssh2"), set()),
], ids=lambda value: "" if callable(value) else ",".join(sorted(value)) or "none")
def test_sigma_rules_hit_exactly(rules, event, expected):
    assert hits(rules, event()) == expected


def test_hex_encoded_arguments_are_searched_by_keywords(rules):
    # an argument with a space is hex in the raw record: only the decoded message has it
    event = execve(["sh", "-c", "shutdown -h now"], "/usr/bin/sh")
    assert "shutdown" not in event.raw and "shutdown -h now" in fulltext(event)
    assert hits(rules, event) == {REBOOT}


# --------------------------------------------------------------------------- semantics


def one_rule(detection: str, logsource: str = "product: linux\n    service: auditd") -> Rule:
    text = f"""
title: semantics
id: 0b5b9d7e-8a42-4a36-9d8a-6c8f3a7b1e01
tags: [attack.t1059]
logsource:
    {logsource}
detection:
{detection}
level: high
"""
    loaded = compile_sigma(text, "inline.yml")
    assert not loaded.rejected, loaded.rejected
    [rule] = loaded.rules
    return rule


def audit(**attrs: object) -> Event:
    return make_event(kind="auditd", service="auditd", attrs={"records": ["SYSCALL"], **attrs})


@pytest.mark.parametrize(("detection", "event", "expected"), [
    ("    s:\n        exe: /usr/BIN/Curl\n    condition: s", audit(exe="/usr/bin/curl"), True),
    ("    s:\n        exe|cased: /usr/BIN/Curl\n    condition: s", audit(exe="/usr/bin/curl"), False),
    ("    s:\n        exe|cased: /usr/bin/curl\n    condition: s", audit(exe="/usr/bin/curl"), True),
    ("    s:\n        exe: '/usr/bin/c?rl'\n    condition: s", audit(exe="/usr/bin/CURL"), True),
    ("    s:\n        exe: '/usr/bin/c?rl'\n    condition: s", audit(exe="/usr/bin/crl"), False),
    ("    s:\n        exe: '*bin*cu*'\n    condition: s", audit(exe="/usr/bin/curl"), True),
    ("    s:\n        exe: '\\*literal'\n    condition: s", audit(exe="*literal"), True),
    ("    s:\n        exe: '\\*literal'\n    condition: s", audit(exe="xliteral"), False),
    ("    s:\n        comm|re: '^cu.l$'\n    condition: s", audit(comm="CURL"), False),
    ("    s:\n        comm|re|i: '^cu.l$'\n    condition: s", audit(comm="CURL"), True),
    ("    s:\n        key: null\n    condition: s", audit(), True),
    ("    s:\n        key: null\n    condition: s", audit(key="x"), False),
    ("    s:\n        key|exists: false\n    condition: s", audit(), True),
    ("    s:\n        addr|cidr: 10.0.0.0/8\n    condition: s", audit(addr="10.20.30.40"), True),
    ("    s:\n        addr|cidr: 10.0.0.0/8\n    condition: s", audit(addr="110.0.0.1"), False),
    ("    s:\n        addr|cidr: 'fd00::/8'\n    condition: s", audit(addr="fd12::1"), True),
    ("    s:\n        pid|gt: 100\n    condition: s", audit(pid="1000"), True),
    ("    s:\n        pid|gt: 100\n    condition: s", audit(pid="99"), False),
    ("    s:\n        pid: 42\n    condition: s", audit(pid="42"), True),
    ("    s:\n        pid: 42\n    condition: s", audit(pid=42), True),
    ("    s:\n        uid|fieldref: euid\n    condition: s", audit(uid="0", euid="0"), True),
    ("    s:\n        uid|fieldref: euid\n    condition: s", audit(uid="0", euid="1000"), False),
    ("    s:\n        type: EXECVE\n    condition: s", audit(records=["SYSCALL", "EXECVE"]), True),
    ("    s:\n        type: EXECVE\n    condition: not s", audit(records=["SYSCALL", "EXECVE"]), False),
    ("    f:\n        missing_field: x\n    condition: not f", audit(), True),
    ("    s:\n        a1|windash: '-s'\n    condition: s", audit(argv=["x", "/s"]), True),
    ("    s:\n        a1|contains|all: [foo, bar]\n    condition: s", audit(argv=["x", "BARfoo"]), True),
    ("    s:\n        a1|contains|all: [foo, bar]\n    condition: s", audit(argv=["x", "foo"]), False),
    ("    s:\n        a0: x\n    condition: s", audit(a0="x"), True),  # no EXECVE: the SYSCALL's a0
    ("    k:\n        - 'ALPHA*omega'\n    condition: k",
     make_event(kind="auditd", raw="alpha to Omega", attrs={"records": ["SYSCALL"]}), True),
    ("    s:\n        initiator.source_ip|cidr: 192.0.2.0/24\n    condition: s",
     make_event(kind="auditd", initiator={"source_ip": "192.0.2.7"}), True),
])
def test_sigma_semantics(detection, event, expected):
    assert one_rule(detection).condition(event) is expected


def test_logsource_guards_the_rule():
    rule = one_rule("    s:\n        exe: /bin/sh\n    condition: s")
    assert not rule.condition(make_event(kind="syslog", attrs={"exe": "/bin/sh"}))


# --------------------------------------------------------------------------- rejected rules


def test_count_aggregation_is_rejected_naming_file_and_reason():
    path = RULES / "unsupported" / "lnx_auditd_cve_2021_3156_sudo_buffer_overflow_brutforce.yml"
    with pytest.raises(RuleError) as caught:
        load_sigma_file(path)
    assert caught.value.path == str(path)
    assert "CVE-2021-3156 Exploitation Attempt" in caught.value.reason
    assert "pipe syntax" in caught.value.reason


def test_timeframe_aggregation_is_rejected():
    path = RULES / "unsupported" / "lnx_auth_susp_failed_logons_single_source.yml"
    with pytest.raises(RuleError, match="timeframe"):
        load_sigma_file(path)


def test_correlation_is_rejected_with_every_rule_of_the_file_listed():
    path = RULES / "unsupported" / "correlation_lnx_sshd_brute_force_attempt.yml"
    with pytest.raises(RuleError) as caught:
        load_sigma_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:")
    assert "2 of 2 Sigma rule(s) rejected" in message
    assert "correlation rules (event_count) are not supported" in message
    assert "Failed Logon - Public IP Attempting Frequently Targeted Account - Linux" in message


@pytest.mark.parametrize(("detection", "logsource", "reason"), [
    ("    s:\n        ParentImage|endswith: /bash\n    condition: s",
     "product: linux\n    category: process_creation", "do not record the parent executable"),
    ("    s:\n        OriginalFileName: x\n    condition: s",
     "product: linux\n    category: process_creation", "original file name"),
    ("    s:\n        user_name: root\n    condition: s", "product: linux\n    service: sshd", "not mapped"),
    ("    s:\n        exe: x\n    condition: s", "product: windows\n    category: process_creation",
     "product 'windows' is not supported"),
    ("    s:\n        exe: x\n    condition: s", "product: linux\n    category: file_event",
     "category 'file_event' of product linux is not supported"),
    ("    s:\n        a0|expand: '%tools%'\n    condition: s", "product: linux\n    service: auditd",
     "placeholder %tools%"),
    ("    s:\n        a0|minute: 5\n    condition: s", "product: linux\n    service: auditd", "time-part"),
])
def test_unsupported_features_are_rejected(detection, logsource, reason):
    text = (f"title: bad\nid: 6f1d2c3b-1111-4a2b-8c3d-9e8f7a6b5c4d\ntags: [attack.t1059]\n"
            f"logsource:\n    {logsource}\ndetection:\n{detection}\nlevel: low\n")
    loaded = compile_sigma(text, "bad.yml")
    assert not loaded.rules
    [rejected] = loaded.rejected
    assert rejected.title == "bad" and reason in rejected.reason


def test_unsupported_field_error_points_at_its_line(tmp_path):
    path = tmp_path / "parent.yml"
    path.write_text("title: parent\nid: 6f1d2c3b-1111-4a2b-8c3d-9e8f7a6b5c4d\ntags: [attack.t1059]\n"
                    "logsource:\n    product: linux\n    category: process_creation\ndetection:\n"
                    "    s:\n        Image: /bin/sh\n        ParentImage: /usr/sbin/sshd\n"
                    "    condition: s\n")
    with pytest.raises(RuleError) as caught:
        load_sigma_file(path)
    assert caught.value.line == 10


def test_rule_without_category_hint_is_rejected():
    text = ("title: untagged\nid: 6f1d2c3b-1111-4a2b-8c3d-9e8f7a6b5c4d\nlogsource:\n    product: linux\n"
            "    service: auditd\ndetection:\n    s:\n        exe: x\n    condition: s\n")
    [rejected] = compile_sigma(text, "x.yml").rejected
    assert "cannot map the rule to an alert category" in rejected.reason


def test_category_override_attribute_wins():
    text = ("title: override\nid: 6f1d2c3b-1111-4a2b-8c3d-9e8f7a6b5c4d\nstackwatch-category: os.login\n"
            "logsource:\n    product: linux\n    service: auditd\ndetection:\n    s:\n        exe: x\n"
            "    condition: s\n")
    [rule] = compile_sigma(text, "x.yml").rules
    assert rule.category == "os.login"


def test_non_uuid_id_is_rejected():
    text = ("title: SSH Brute Force Authentication Attempts\nid: 8d9c5b6a-9b42-4d71-9b3f-sshbruteforce01\n"
            "tags: [attack.t1110]\nlogsource:\n    product: linux\n    service: syslog\ndetection:\n"
            "    k:\n        - 'Failed password'\n    condition: k\n")
    [rejected] = compile_sigma(text, "x.yml").rejected
    assert "UUID" in rejected.reason


def test_file_without_rules_is_an_error(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text("# nothing\n")
    with pytest.raises(RuleError, match="no Sigma rule"):
        load_sigma_file(path)


# --------------------------------------------------------------------------- SQL cross-check

_WORDS = ["iptables", "IPTables", "ip6tables", "ufw", "UFW", "firewall-cmd", "Firewall-Cmd", "ls", "LS",
          "dd", "truncate", "shutdown", "Reboot", "halt", "poweroff", "init", "telinit", "cat", "curl"]
_ARGS = ["-F", "-f", "-Z", "-X", "-x", "--flush", "DROP", "drop", "-dDROP", "delete", "DELETE",
         "--remove-port=22", "remove", "ufw-logging-deny", "UFW-Logging-Allow", "ufw6-logging-deny",
         "ufw6-logging-allowed", "-s", "+1M", "if=/dev/zero", "of=/tmp/x", "IF=/dev/zero", "/", " /", "-id",
         "-i", "-d", "--inode", "--directory", "-lai", "-ld", "0", "6", "now", "-r", "a b", "x*y", "100%",
         "under_score", "back\\slash"]
_EXES = ["/usr/sbin/iptables", "/usr/sbin/IPTABLES", "/sbin/xtables-legacy-multi",
         "/usr/sbin/xtables-nft-multi",
         "/usr/sbin/ip6tables-legacy-multi", "/usr/bin/ls", "/bin/ls", "/usr/bin/lsblk", "/usr/bin/dd",
         "/usr/sbin/ufw", "/usr/bin/firewall-cmd", "/usr/sbin/shutdown", "/usr/bin/true"]
_UNITS = ["firewalld", "FirewallD", "iptables", "ufw", "ufw.service", "nova-compute", "sshd"]
_SSHD = ["Corrupted MAC on input.", "corrupted mac ON INPUT", "fatal: buffer_get_string: bad string",
         "error: Incorrect Signature", "Accepted password for root from 10.0.0.1 port 22 ssh2",
         "Failed password for invalid user admin from 203.0.113.9 port 4242 ssh2",
         "error in libcrypto", "error in lib crypto", "Local: crc32 compensation attack: network attack"]


def _generated_events(count: int) -> list[Event]:
    rng = random.Random(20260101)
    events: list[Event] = []
    while len(events) < count:
        roll = rng.random()
        if roll < 0.7:
            argv = [rng.choice(_WORDS)] + [rng.choice(_ARGS) for _ in range(rng.randint(0, 4))]
            events.append(execve(argv, rng.choice(_EXES)))
        elif roll < 0.8:
            events.append(service_stop(rng.choice(_UNITS)))
        else:
            events.append(sshd(rng.choice(_SSHD), service=rng.choice(["sshd", "sshd", "sudo"])))
    return events


def test_predicate_hit_counts_equal_sqlite_backend_hit_counts():
    events = _generated_events(3000)
    conn = load_table(events)
    sql = backend()
    compared = 0
    for path in SUPPORTED:
        text = path.read_text()
        [sigma_rule] = SigmaCollection.from_yaml(text).rules
        [query] = sql.convert_rule(sigma_rule)
        sql_hits = count_hits(conn, query)
        [rule] = load_sigma_file(path)
        ours = sum(1 for event in events if rule.condition(event))
        assert ours == sql_hits, f"{path.name}: predicate {ours} hits, SQL {sql_hits}: {query}"
        assert 0 < ours < len(events), f"{path.name}: {ours} hits is not a useful comparison"
        compared += 1
    assert compared == len(SUPPORTED) == 7
