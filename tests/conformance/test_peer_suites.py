"""Conformance with peers' labelled suites: fail2ban's filter test logs and Wazuh's
rules-testing files (in the shared corpus) run through stackwatch's parsers and rules.

Per product: the share of lines stackwatch parses, and whether it counts as an attack what
the peer counts (see peers.py for both verdicts). Every disagreement is listed below by
line, with the reason it is deliberate or a known limit: a new disagreement (a regression)
and a disagreement that went away (a fix: update the list and docs/formats.md) both fail.
docs/formats.md carries the table this module computes ("Conformance with peers' suites")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conformance.peers import Case, fail2ban_cases, verdict, wazuh_cases

ROOT = Path(__file__).resolve().parents[2]

TCP_WRAPPERS = ("tcp_wrappers refused the connection before any login was tried: the address is one the "
                "operator already blocks")
MULTI_LINE = ("fail2ban's multi-line verdict: the line counts only because of an earlier line of the same "
              "connection, which stackwatch counts itself when it is a refusal")
NO_ADDRESS = ("OpenSSH < 6.8 wrote 'Too many authentication failures' without the address (fail2ban takes "
              "it from an earlier line); from 6.8 the 'maximum authentication attempts exceeded' line counts")
CLIENT_SUMMARY = ("the client's own 'Auth fail' reason for leaving: it restates the refusals sshd logged as "
                  "'Failed ...', which count")
PAM_COPY = ("pam_unix's copy of an attempt: counted by the PAM-only rule, whose alert is dropped where "
            "sshd's own line for the address is there (fail2ban waits for a later line instead)")
SUCCESS = ("a successful login after failures by other names: fail2ban counts it as one more failure; "
           "stackwatch counts the failures, and a success is not one")
RESTATED = "restates the 'Invalid user' line of the same connection, which counts"
NON_SSH = ("a PAM failure of an FTP or unnamed daemon: stackwatch's login rules watch the ways into a cloud "
           "node (SSH, console, su and sudo)")
PUBKEY = ("a valid account's failed public key: a client offering several keys is no attack (fail2ban's "
          "sshd filter agrees; its selinux-ssh filter counts it)")
NOT_ROOT = "a failed su to an unprivileged account: the privilege rule watches switches to root"
NO_ADDRESS_PAM = "no address and no SSH: an FTP daemon's PAM check for an unknown user"
SYNTHETIC = ("Wazuh's sample is a placeholder ('Text' body) for ANOM_LOGIN_FAILURES, which pam_faillock "
             "writes on lockout; no real record was found to map it from")

# Known disagreements, by the line's message (after 'program[pid]: '; whole record for auditd).
KNOWN: dict[str, str] = {
    "refused connect from _U2FsdGVkX19P3BCJmFBHhjLza8BcMH06WCUVwttMHpE=_@::ffff:218.249.210.161"
    " (::ffff:218.249.210.161)": TCP_WRAPPERS,
    "error: Received disconnect from 198.51.100.34: 11: Bye Bye [preauth]": MULTI_LINE,
    "Received disconnect from 198.51.100.76 port 58846:11: Bye Bye [preauth]": MULTI_LINE,
    "Received disconnect from 1.2.3.4: 11: Normal Shutdown, Thank you for playing [preauth]": MULTI_LINE,
    "Connection closed by 61.0.0.1 [preauth]": MULTI_LINE,
    "Disconnecting: Too many authentication failures for git [preauth]": NO_ADDRESS,
    "Disconnecting: Too many authentication failures for root [preauth]": NO_ADDRESS,
    "Disconnecting: Too many authentication failures [preauth]": NO_ADDRESS,
    "Received disconnect from 89.24.13.192: 3: com.jcraft.jsch.JSchException: Auth fail": CLIENT_SUMMARY,
    "error: Received disconnect from 10.0.0.1 port 7736:3: com.jcraft.jsch.JSchException:"
    " Auth fail [preauth]":
        CLIENT_SUMMARY,
    "error: Received disconnect from 94.249.236.6: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]":
        CLIENT_SUMMARY,
    "error: Received disconnect from 94.249.236.6: 3: Ha ha, suckers!: Auth fail [preauth]": CLIENT_SUMMARY,
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser="
    " rhost=192.0.2.112  user=root":
        PAM_COPY,
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser="
    " rhost=192.0.2.113  user=rda":
        PAM_COPY,
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=rda"
    " rhost=192.0.2.113 [preauth]":
        PAM_COPY,
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=root rhost=192.0.2.114":
        PAM_COPY,
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=root rhost=192.0.2.116":
        PAM_COPY,
    "Accepted password for known from 192.0.2.114 port 52100 ssh2": SUCCESS,
    "Accepted password for known from 192.0.2.116 port 52100 ssh2": SUCCESS,
    "Disconnecting invalid user admin 192.0.2.117 port 44004: Change of username or service not allowed:"
    " (admin,ssh-connection) -> (user,ssh-connection) [preauth]": RESTATED,
    "Postponed keyboard-interactive for invalid user warez from 192.241.237.101 port 54197 ssh2 [preauth]":
        RESTATED,
    "Disconnected from invalid user root 172.18.1.100 port 43042": RESTATED,
    "Disconnecting invalid user root 172.18.1.100 port 43042": RESTATED,
    "(pam_unix) authentication failure; logname= uid=0 euid=0 tty=pure-ftpd"
    " ruser=sample-user rhost=192.168.1.1 ":
        NON_SSH,
    "(pam_unix) authentication failure; logname= uid=0 euid=0 tty= ruser="
    " rhost=66.232.129.62  user=mark": NON_SSH,
    "pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp"
    " ruser=an8767 rhost=www.google.com":
        NON_SSH,
    "pam_unix: authentication failure; logname= uid=0 euid=0 tty=ftp ruser=an8767"
    " rhost=www.google.com": NON_SSH,
    "pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx ruser=test rhost=192.0.2.151"
    " rhost=192.0.2.1": NON_SSH,
    "pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx ruser= rhost=192.0.2.2 user=test"
    " rhost=192.0.2.152": NON_SSH,
    "check pass; user unknown": NO_ADDRESS_PAM,
    "type=USER_AUTH msg=audit(1373129280.000:9): user pid=1277 uid=0 auid=4294967295 ses=4294967295"
    " subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=pubkey acct=\"root\" exe=\"/usr/sbin/sshd\""
    " hostname=? addr=194.228.20.113 terminal=ssh res=failed'": PUBKEY,
    "authentication failure; logname= uid=1342 euid=0 tty= ruser=dcid rhost=  user=osaudit": NOT_ROOT,
    "BAD SU ger to fwmaster on /dev/ttyp0": NOT_ROOT,
    "type=ANOM_LOGIN_FAILURES msg=audit(1450770603.209:3300446): Text": SYNTHETIC,
}


@dataclass(frozen=True)
class Product:
    suite: str
    path: str  # under the corpus
    min_parsed: float  # share of lines stackwatch must parse (the state these tests pin)

    @property
    def name(self) -> str:
        return Path(self.path).name


PRODUCTS = (
    Product("fail2ban", "linux-auth/fail2ban/sshd.log", 1.0),
    Product("fail2ban", "linux-auth/fail2ban/sshd-journal.log", 1.0),
    Product("fail2ban", "linux-auth/fail2ban/dropbear.log", 1.0),
    Product("fail2ban", "linux-auth/fail2ban/pam-generic.log", 1.0),
    Product("fail2ban", "linux-auth/fail2ban/selinux-ssh.log", 1.0),
    Product("wazuh", "linux-auth/wazuh/sshd.ini", 0.85),  # the rest: debug1 and config errors
    Product("wazuh", "linux-auth/wazuh/pam.ini", 1.0),
    Product("wazuh", "linux-auth/wazuh/su.ini", 1.0),
    Product("wazuh", "linux-auth/wazuh/sudo.ini", 1.0),
    Product("wazuh", "linux-auth/wazuh/dropbear.ini", 1.0),
    Product("wazuh", "auditd/wazuh/auditd.ini", 1.0),
    Product("wazuh", "auditd/wazuh/audit_scp.ini", 0.85),
)


def _corpus() -> Path:
    # parametrisation happens at collection time, before the `corpus` fixture exists
    return Path(os.environ.get("STACKWATCH_CORPUS", ROOT.parent / "shared" / "corpus"))


def cases_of(product: Product) -> list[Case]:
    path = _corpus() / product.path
    if product.suite == "fail2ban":
        return fail2ban_cases(path)[0]
    return list(wazuh_cases(path))


def message(line: str) -> str:
    """The line without its syslog header (auditd records and header-less lines whole)."""
    _, sep, rest = line.partition(": ")
    return rest if sep and not line.startswith("type=") else line


@dataclass(frozen=True)
class Row:
    product: Product
    lines: int
    parsed: int
    attacks: int  # lines the peer counts as an attack
    counted: int  # lines stackwatch counts as an attack
    agreed: int
    disagreements: tuple[str, ...]  # messages

    def markdown(self) -> str:
        share = f"{self.parsed / self.lines:.0%}" if self.lines else "-"
        agree = f"{self.agreed / self.lines:.0%}" if self.lines else "-"
        return (f"| {self.product.suite} | `{self.product.name}` | {self.lines} | {self.parsed} ({share}) "
                f"| {self.attacks} | {self.counted} | {self.agreed} ({agree}) |")


def evaluate(product: Product) -> Row:
    cases = cases_of(product)
    verdicts = [verdict(case.line) for case in cases]
    disagreements = tuple(message(c.line) for c, v in zip(cases, verdicts, strict=True) if not v.agrees(c))
    return Row(product, len(cases), sum(v.parsed for v in verdicts), sum(c.attack for c in cases),
               sum(v.counted for v in verdicts), len(cases) - len(disagreements), disagreements)


TABLE_HEADER = ("| suite | product (test file) | labelled lines | parsed | peer's attacks "
                "| stackwatch counts | agree |\n|---|---|---|---|---|---|---|")


def render_table() -> str:
    return "\n".join([TABLE_HEADER, *(evaluate(product).markdown() for product in PRODUCTS)])


@pytest.fixture(autouse=True)
def _needs_corpus() -> None:
    if not (_corpus() / "linux-auth").is_dir():
        pytest.fail(f"corpus not found at {_corpus()} (set STACKWATCH_CORPUS)")


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p.name)
def test_share_of_lines_parsed(product: Product) -> None:
    row = evaluate(product)
    assert row.lines > 0
    assert row.parsed / row.lines >= product.min_parsed, row


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p.name)
def test_every_disagreement_is_a_known_one(product: Product) -> None:
    unknown = [line for line in evaluate(product).disagreements if line not in KNOWN]
    assert unknown == []


def test_every_known_disagreement_still_happens() -> None:
    """A fix makes a listed disagreement go away: drop it from KNOWN and docs/formats.md."""
    seen = {line for product in PRODUCTS for line in evaluate(product).disagreements}
    assert sorted(set(KNOWN) - seen) == []


@pytest.mark.parametrize(("line", "expected_rule"), [
    # one line of each way a login fails or a switch to root fails, each counted by its rule
    ("Jul  3 14:59:17 host sshd-session[1571]: Failed password for root from 192.0.2.1 port 56502 ssh2",
     "SSH brute force on a node"),
    ("Feb 25 14:34:11 belka sshd[31603]: Failed password for invalid user ROOT from aaaa:bbbb:cccc:1234::1:1",
     "SSH brute force on a node"),
    ("Jul 20 14:42:11 localhost sshd[22708]: Invalid user ftp from 192.0.2.1", "SSH brute force on a node"),
    ("Feb 7 16:01:07 linux-m899 sshd[5106]: User root from 192.51.100.54 not allowed because a group"
     " is listed in DenyGroups", "SSH brute force on a node"),
    ("Nov 23 21:50:37 myhost sshd[21810]: error: maximum authentication attempts exceeded for root"
     " from 61.0.0.1 port 49940 ssh2 [preauth]", "SSH brute force on a node"),
    ("Jan  8 16:39:33 tp.lan dropbear[14824]: Bad password attempt for 'root' from 193.219.28.149:48629",
     "SSH brute force on a node"),
    ("Nov 11 22:46:29 localhost sshd(pam_unix)[15794]: 2 more authentication failures; logname= uid=0 euid=0"
     " tty=ssh ruser= rhost=10.0.3.1  user=root", "SSH brute force on a node (PAM only)"),
    ("type=USER_AUTH msg=audit(1383116263.000:603): pid=12887 uid=0 auid=4294967295 ses=4294967295"
     " subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=password acct=\"dan\" exe=\"/usr/sbin/sshd\""
     " hostname=? addr=192.168.3.100 terminal=ssh res=failed'", "SSH brute force on a node (auditd only)"),
    ("Apr 27 15:22:23 niban su(pam_unix)[2298]: authentication failure; logname= uid=1342 euid=0 tty="
     " ruser=dcid rhost=  user=root", "Failed attempt to become root"),
    ("Jun 25 16:15:45 precise32 sudo:     mike : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/root ;"
     " USER=root ; COMMAND=/bin/ls", "Failed attempt to become root"),
    ("type=DAEMON_ABORT msg=audit(1339336882.189:9206): auditd error halt, auid=4294967295 pid=3095"
     " res=failed", "Security daemon stopped outside a maintenance window"),
])
def test_each_way_to_fail_is_counted_by_its_rule(line: str, expected_rule: str) -> None:
    assert expected_rule in verdict(line).rules


def test_fail2ban_ddos_and_extra_mode_lines_are_not_login_failures() -> None:
    """Scanner noise (no identification string, negotiation failures, preauth closes) is what
    fail2ban counts only in its opt-in ddos/extra modes; stackwatch records it as
    ssh.protocol_error / ssh.disconnect and counts none of it, except the one 'Invalid user'
    line fail2ban happens to list in a ddos section (a refusal in any mode)."""
    folder = _corpus() / "linux-auth" / "fail2ban"
    counted = [c.line for name in ("sshd.log", "sshd-journal.log")
               for c in fail2ban_cases(folder / name)[1] if verdict(c.line).counted]
    assert counted == ["Jun  6 04:17:04 host sshd[1189074]: Invalid user  from 192.0.2.68 port 34916"]


def test_docs_carry_the_computed_table() -> None:
    docs = (ROOT / "docs" / "formats.md").read_text()
    assert render_table() in docs, "docs/formats.md is out of date; paste:\n" + render_table()
