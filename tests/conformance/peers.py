"""Peers' labelled test suites read as conformance data, and stackwatch's verdict on each line.

* fail2ban's filter test logs (``# failJSON: {"match": true|false, "host": ...}`` above each
  line): ``match`` says whether fail2ban's filter counts the line as a failure of ``host``.
  Only lines checked in fail2ban's default ``normal`` mode are scored; the sections run only
  in its opt-in ``ddos``/``extra`` modes are reported apart (``mode_only``).
* Wazuh's rules-testing INI files (``log N pass = LINE`` then ``rule = ID``): the rule Wazuh
  must raise for the line. Which rule ids mean a failed login or a failed attempt to become
  another user is read from the rule descriptions (``WAZUH_ATTACK_RULES``).

Stackwatch's verdict: a line counts when its event is one a built-in rule of an attack
category counts (the rule's index and condition both hold): a refused login for the
brute-force and spraying rules, a failed switch of user for the privilege rule, a stopped
security daemon. The rule set decides, so the report follows the rules as they change."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from stackwatch.core.event import Event
from stackwatch.detect.loader import builtin_rules
from stackwatch.detect.model import Rule
from stackwatch.parsers.framing import parse_text

ATTACK_CATEGORIES = frozenset({"auth.bruteforce", "auth.spraying", "service.unscheduled_stop"})
"""Categories whose rules count attacks; of os.privilege only the failure rule (a successful
sudo to a shell is privilege use, not an attack, for Wazuh as for us)."""
PRIVILEGE_FAILURE_RULE = "22796119-9042-4092-83ed-75c780661cef"  # rules/os/privilege_failure.yaml

# Wazuh rule ids of the suites that flag a failed login, a refused account, a failed
# privilege change or auditd stopping (from the rule descriptions in Wazuh's ruleset):
WAZUH_ATTACK_RULES = frozenset({
    "5710",  # sshd: attempt to login using a non-existent user
    "5712",  # sshd: brute force trying to get access to the system (non-existent user)
    "5716",  # sshd: authentication failed
    "5718",  # sshd: attempt to login using a denied user
    "5719",  # sshd: multiple access attempts using a denied user
    "5758",  # sshd: maximum authentication attempts exceeded
    "5760",  # sshd: authentication failed
    "5763",  # sshd: brute force trying to get access to the system (authentication failed)
    "5503",  # PAM: user login failed
    "5504",  # PAM: attempt to login with an invalid user
    "2502",  # syslog: user missed the password more than one time
    "5301",  # su: user missed the password to change UID
    "5302",  # su: user missed the password to change UID to root
    "5401",  # sudo: failed attempt to run sudo
    "5404",  # sudo: three failed attempts to run sudo
    "5405",  # sudo: unauthorized user attempted to use sudo
    "51003",  # dropbear: bad password attempt
    "51093",  # dropbear: bad password attempt for a non-existing user
    "80703",  # auditd: daemon end
    "80704",  # auditd: daemon abort
    "80723",  # auditd: limit of failed login attempts reached
})


@dataclass(frozen=True)
class Case:
    """One labelled line of a peer's suite."""

    suite: str  # "fail2ban" or "wazuh"
    product: str  # the file: sshd.log, sshd.ini...
    line: str
    attack: bool  # the peer counts it as an attack
    host: str | None = None  # fail2ban: the address it blames
    label: str = ""  # wazuh: the rule id; fail2ban: the description


@dataclass(frozen=True)
class Verdict:
    parsed: bool  # stackwatch recognised the line (an event with an action)
    counted: bool  # a rule of an attack category counts it
    source_ip: str | None
    rules: tuple[str, ...]  # titles of the rules that count it

    def agrees(self, case: Case) -> bool:
        if case.attack != self.counted:
            return False
        return not (case.attack and case.host and self.source_ip != case.host)


# ------------------------------------------------------------------------ fail2ban


def _normal_mode(options: list[dict]) -> bool:
    return any(option.get("mode", "normal") == "normal" for option in options)


def _constraint_holds(constraint: str, name: str) -> bool:
    """fail2ban's ``constraint`` evaluated for the normal mode, without eval: the suites use
    only ``name == '...'`` and ``opts.get('mode') ==/!= '...'``, one at a time."""
    match = re.fullmatch(r"name ?== ?'([\w-]+)'", constraint)
    if match:
        return match.group(1) == name
    match = re.fullmatch(r"opts\.get\('mode'\) (==|!=) '(\w+)'", constraint)
    if match:
        return (match.group(2) == "normal") == (match.group(1) == "==")
    raise ValueError(f"unknown failJSON constraint: {constraint!r}")


def fail2ban_cases(path: Path) -> tuple[list[Case], list[Case]]:
    """(cases scored in the normal mode, cases of ddos/extra-only sections) of one test log."""
    name = path.stem
    options: list[dict] = [{}]
    pending: dict | None = None
    scored: list[Case] = []
    mode_only: list[Case] = []
    for line in path.read_text().splitlines():
        if line.startswith("# filterOptions:"):
            options = json.loads(line.split(":", 1)[1])
            options = options if isinstance(options, list) else [options]
        elif line.startswith("# failJSON:"):
            pending = json.loads(line.split(":", 1)[1])
        elif line.strip() and not line.startswith("#") and pending is not None:
            conditions = [o.get("test.condition", "") for o in options if _normal_mode([o])]
            case = Case("fail2ban", path.name, line, bool(pending["match"]), pending.get("host"),
                        pending.get("desc", ""))
            if not _normal_mode(options):
                mode_only.append(case)
            elif all(not c or _constraint_holds(c, name) for c in conditions) and _constraint_holds_opt(
                    pending.get("constraint", ""), name):
                scored.append(case)
            pending = None
    return scored, mode_only


def _constraint_holds_opt(constraint: str, name: str) -> bool:
    return not constraint or _constraint_holds(constraint, name)


# ------------------------------------------------------------------------ Wazuh


def wazuh_cases(path: Path) -> Iterator[Case]:
    """Every ``log N pass = LINE`` of a Wazuh rules-testing INI, labelled by its rule."""
    logs: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("["):
            logs = []
        elif re.match(r"log \d+ pass = ", line):
            logs.append(line.split(" = ", 1)[1])
        elif line.startswith("rule = "):
            rule = line.split(" = ", 1)[1].strip()
            for log in logs:
                yield Case("wazuh", path.name, log, rule in WAZUH_ATTACK_RULES, label=rule)
            logs = []


# ------------------------------------------------------------------------ stackwatch


@cache
def _attack_rules() -> tuple[Rule, ...]:
    return tuple(rule for rule in builtin_rules()
                 if rule.category in ATTACK_CATEGORIES or rule.id == PRIVILEGE_FAILURE_RULE)


def counts(rule: Rule, event: Event) -> bool:
    """The rule's index hints and its condition both hold: the engine would offer the event
    to the rule, and a counting kind would count it."""
    for dimension, allowed in rule.index.items():
        if getattr(event, dimension) not in allowed:
            return False
    return bool(rule.condition(event))


def verdict(line: str) -> Verdict:
    events = parse_text(line, host="peer", origin="conformance", year=2005)
    event = events[0]
    rules = tuple(rule.title for rule in _attack_rules() if counts(rule, event))
    return Verdict(_parsed(event), bool(rules), event.initiator.source_ip, rules)


def _parsed(event: Event) -> bool:
    """The format was recognised and, for a syslog line, its program's message too: an
    action or a who/where beyond the syslog header (``Postponed publickey for U from IP``)."""
    if event.kind == "unparsed":
        return False
    if event.kind != "syslog":
        return True  # a record parser (auditd...) read the record's own fields
    return event.action is not None or bool(event.initiator.name or event.initiator.source_ip)
