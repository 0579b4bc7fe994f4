"""OpenSSH as a real producer: Debian's sshd (openssh-server) on a loopback port logs through a
real rsyslogd to a file (read by `stackwatch analyze`) and over TCP to a running `stackwatch
serve`; Debian's ssh client attacks it from distinct loopback addresses. Each address plays
one scenario, so each alert (or its absence) is attributed to exactly one behaviour:

=========  =====================================================================================
127.0.0.2  brute force: 3 connections x MaxAuthTries (3) wrong passwords for one valid user
127.0.0.3  spraying: 10 user names that do not exist, one password each
127.0.0.4  a good password login
127.0.0.6  a user refused by DenyUsers (with the right password)
127.0.0.7  root logs in with a key (PermitRootLogin prohibit-password)
127.0.0.8  a client offering a wrong key before the right one, 10 times: no attack
127.0.0.10 scanners: connect and leave before the key exchange, or speak HTTP to the port
(local)    the valid user runs ``sudo -S true`` twice (not in sudoers; a wrong password, then hers)
=========  =====================================================================================
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackwatch.core.event import Event
from stackwatch.parsers.framing import parse_text
from tests.producers.openssh import (
    PASSWORD,
    LocalUsers,
    SshClient,
    Sshd,
    client_key,
    probe_before_auth,
    readable_folder,
    sshd_config,
    sudo_as,
)
from tests.servetools import STACKWATCH, HookReceiver, Rsyslog, ServeProcess, free_port, wait_for

pytestmark = pytest.mark.integration

USER, DENIED = "sw-alice", "sw-denied"
BRUTE, SPRAY, GOOD, REFUSED, ROOT_KEY, MULTI_KEY, SCANNER = (
    "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.10")
SPRAYED = [f"sw-nobody{i}" for i in range(10)]
SSHD_PROGRAMS = ("sshd[", "sshd-session[", "sshd-auth[")


@dataclass
class Run:
    auth_log: Path
    analyze_alerts: list[dict]
    serve_alerts: list[dict]

    def lines(self) -> list[str]:
        return self.auth_log.read_text().splitlines()

    def events(self) -> list[Event]:
        return parse_text(self.auth_log.read_text(), host="", origin="test", year=time.gmtime().tm_year)


def _rsyslog_config(socket_path: Path, auth_log: Path, serve_port: int) -> str:
    return (
        'module(load="imuxsock" SysSock.Use="off")\n'
        f'input(type="imuxsock" Socket="{socket_path}" CreatePath="on" RateLimit.Interval="0")\n'
        f'auth,authpriv.* action(type="omfile" file="{auth_log}" template="RSYSLOG_TraditionalFileFormat")\n'
        f'auth,authpriv.* action(type="omfwd" target="127.0.0.1" port="{serve_port}" protocol="tcp"\n'
        '       template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="-1"\n'
        '       queue.type="LinkedList" queue.size="10000")\n'
    )


def _serve_config(folder: Path, port: int, hook_url: str) -> Path:
    """Built-in rules only: the alerts are the product's, not a test rule's."""
    config = folder / "serve.yaml"
    config.write_text(
        f"hostname: testmon\nstate_dir: {folder / 'state'}\nstore: {{url: '{folder / 'data'}'}}\n"
        "rules: {builtin: true}\n"
        f"sources:\n  - {{type: syslog_tcp, name: rsyslog, listen: '127.0.0.1:{port}'}}\n"
        f"sinks:\n  - {{type: webhook, name: hook, url: '{hook_url}'}}\n"
    )
    return config


def _attack(folder: Path, authorized: Path, port: int, log_socket: Path) -> None:
    """Every scenario of the module docstring, against the running sshd."""
    keys = [client_key(folder, f"client{i}") for i in range(3)]  # [2] is authorised
    for user in (USER, "root"):
        (authorized / user).write_text(keys[2].with_suffix(".pub").read_text())
        (authorized / user).chmod(0o644)
    client = SshClient(folder, port)
    clients = [client.start(USER, BRUTE, password="wrong-guess", tries=3) for _ in range(3)]
    clients += [client.start(name, SPRAY, password="123456") for name in SPRAYED]
    clients += [client.start(DENIED, REFUSED, password=PASSWORD)]
    refused = client.run_all(clients)
    assert all(code == 255 for code in refused), refused  # 255: ssh could not log in
    logged_in = [client.start(USER, GOOD, password=PASSWORD), client.start("root", ROOT_KEY, keys=(keys[2],))]
    logged_in += [client.start(USER, MULTI_KEY, keys=(keys[0], keys[2])) for _ in range(10)]
    assert client.run_all(logged_in) == [0] * len(logged_in)
    probe_before_auth(SCANNER, port, None)
    probe_before_auth(SCANNER, port, b"GET / HTTP/1.0\r\n\r\n")
    assert [sudo_as(USER, log_socket, password) for password in ("wrong-guess", PASSWORD)] == [1, 1]


def _settled(path: Path, quiet: float = 1.5) -> bool:
    """True once ``path`` exists and has not grown for ``quiet`` seconds."""
    if not path.exists():
        return False
    size = path.stat().st_size
    time.sleep(quiet)
    return path.stat().st_size == size and size > 0


def _categories(alerts: list[dict]) -> dict[str | None, set[str]]:
    by_source: dict[str | None, set[str]] = defaultdict(set)
    for alert in alerts:
        by_source[alert.get("source_ip")].add(alert["category"])
    return dict(by_source)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("openssh")
    auth_log, log_socket = folder / "auth.log", folder / "log.sock"
    ssh_port, serve_port = free_port(), free_port()
    expected = {BRUTE: "auth.bruteforce", SPRAY: "auth.spraying", ROOT_KEY: "os.login", None: "os.privilege"}
    with LocalUsers([USER, DENIED]), readable_folder() as authorized, HookReceiver() as hook:
        serve = ServeProcess(_serve_config(folder, serve_port, hook.url)).start()
        try:
            with Rsyslog(folder / "rsyslog", _rsyslog_config(log_socket, auth_log, serve_port)) as rsyslog:
                wait_for(log_socket.exists, 15)
                config = sshd_config(folder, ssh_port, deny=DENIED, authorized=authorized)
                with Sshd(folder, config, log_socket, ssh_port):
                    _attack(folder, authorized, ssh_port, log_socket)
                    wait_for(lambda: _settled(auth_log), 30)

                def delivered() -> bool:
                    seen = _categories([d["alert"] for d in hook.documents()])
                    return all(category in seen.get(ip, set()) for ip, category in expected.items())

                try:
                    wait_for(delivered, 30)
                except AssertionError:
                    raise AssertionError(f"serve's alerts: {hook.documents()}\nserve log:\n{serve.log()}"
                                         f"\nrsyslog:\n{rsyslog.output()}") from None
        finally:
            assert serve.stop() == 0, serve.log()
    analyzed = subprocess.run(
        [STACKWATCH, "analyze", "--format", "json", "--data", str(folder / "analyze-data"), str(auth_log)],
        capture_output=True, timeout=120, check=True,
    )
    yield Run(auth_log, [json.loads(line) for line in analyzed.stdout.splitlines() if line.strip()],
              [d["alert"] for d in hook.documents()])


def _sshd_lines(run: Run, needle: str) -> list[str]:
    return [line for line in run.lines() if any(p in line for p in SSHD_PROGRAMS) and needle in line]


# ---------------------------------------------------------------- what sshd wrote, as parsed


def test_every_line_the_producer_wrote_parses(run: Run) -> None:
    events = run.events()
    assert len(events) == len(run.lines()) > 50
    assert [e.raw for e in events if e.kind == "unparsed"] == []


@pytest.mark.parametrize(("needle", "source", "action", "outcome"), [
    (f"Failed password for {USER} from {BRUTE}", BRUTE, "authenticate", "failure"),
    (f"maximum authentication attempts exceeded for {USER} from {BRUTE}", BRUTE, "authenticate.exceeded",
     "failure"),
    (f"Invalid user sw-nobody3 from {SPRAY}", SPRAY, "user.not_found", "failure"),
    (f"Failed password for invalid user sw-nobody3 from {SPRAY}", SPRAY, "authenticate", "failure"),
    (f"User {DENIED} from {REFUSED} not allowed because listed in DenyUsers", REFUSED, "authenticate",
     "failure"),
    (f"Accepted password for {USER} from {GOOD}", GOOD, "authenticate", "success"),
    (f"Accepted publickey for root from {ROOT_KEY}", ROOT_KEY, "authenticate", "success"),
    (f"Failed publickey for {USER} from {MULTI_KEY}", MULTI_KEY, "authenticate", "failure"),
    (f"]: Connection from {SCANNER}", SCANNER, "ssh.connect", None),  # VERBOSE, with 'rdomain ""'
    (f"Connection closed by {SCANNER}", SCANNER, "ssh.disconnect", None),
    (f"banner exchange: Connection from {SCANNER}", SCANNER, "ssh.protocol_error", "failure"),
])
def test_each_scenario_line_is_read_with_its_address(run: Run, needle: str, source: str, action: str,
                                                     outcome: str | None) -> None:
    lines = _sshd_lines(run, needle)
    assert lines, f"sshd wrote no line with {needle!r}"
    for line in lines:
        event = parse_text(line, year=2026)[0]
        assert (event.service, event.action, event.outcome) == ("sshd", action, outcome), line
        assert event.initiator.source_ip == source, line


def test_pam_lines_of_the_attempts_are_marked_as_pam(run: Run) -> None:
    pam = [e for e in run.events()
           if e.service == "sshd" and "PAM" in e.raw.upper() and "authentication failure" in e.raw]
    assert len(pam) >= 4  # pam_unix's line, and libpam's "PAM N more authentication failures"
    assert all(e.attrs.get("pam_module") in ("pam_unix", "libpam") for e in pam)


# ---------------------------------------------------------------- alerts: analyze and serve


@pytest.mark.parametrize("via", ["analyze", "serve"])
@pytest.mark.parametrize(("source", "category"), [
    (BRUTE, "auth.bruteforce"), (SPRAY, "auth.bruteforce"), (SPRAY, "auth.spraying"), (ROOT_KEY, "os.login"),
])
def test_attack_raises_its_alert(run: Run, via: str, source: str, category: str) -> None:
    alerts = run.analyze_alerts if via == "analyze" else run.serve_alerts
    assert category in _categories(alerts).get(source, set()), alerts


@pytest.mark.parametrize("via", ["analyze", "serve"])
@pytest.mark.parametrize("source", [GOOD, REFUSED, MULTI_KEY, SCANNER])
def test_ordinary_use_and_lone_refusals_raise_nothing(run: Run, via: str, source: str) -> None:
    """A good login, one DenyUsers refusal, a client trying several keys until one fits (fail2ban
    and Wazuh do not count those either) and two scanner probes are no attack."""
    alerts = run.analyze_alerts if via == "analyze" else run.serve_alerts
    assert _categories(alerts).get(source, set()) == set(), alerts


def test_the_multi_key_client_wrote_enough_failures_to_have_counted(run: Run) -> None:
    """The quiet of the multi-key client is a decision, not a lack of data: sshd logged a
    failed key on each of its ten connections, as many as the brute-force threshold."""
    assert len(_sshd_lines(run, f"Failed publickey for {USER} from {MULTI_KEY}")) == 10


def test_brute_force_alert_names_the_node_and_address(run: Run) -> None:
    alert = next(a for a in run.analyze_alerts
                 if a["category"] == "auth.bruteforce" and a["source_ip"] == BRUTE)
    assert alert["service"] == "sshd" and alert["severity"] == "high"
    assert f"from {BRUTE}" in alert["summary"] and f"last user tried: {USER}" in alert["summary"]
    # 9 failed passwords + 3 'maximum authentication attempts exceeded' (one per connection)
    assert alert["summary"].startswith(("10 ", "11 ", "12 "))


def test_spraying_alert_lists_the_names_tried(run: Run) -> None:
    alert = next(a for a in run.analyze_alerts if a["category"] == "auth.spraying")
    assert alert["source_ip"] == SPRAY and "sw-nobody" in alert["summary"]


@pytest.mark.parametrize("via", ["analyze", "serve"])
def test_sudo_by_a_user_not_in_sudoers_is_a_failed_attempt_to_become_root(run: Run, via: str) -> None:
    alerts = run.analyze_alerts if via == "analyze" else run.serve_alerts
    [alert] = [a for a in alerts if a["category"] == "os.privilege"]
    assert (alert["user"], alert["severity"]) == (USER, "high")  # high: not in sudoers at all
    assert "NOT in sudoers" in alert["summary"]


def test_root_key_login_is_reported_with_user_and_address(run: Run) -> None:
    alert = next(a for a in run.serve_alerts if a["category"] == "os.login")
    assert (alert["user"], alert["source_ip"], alert["severity"]) == ("root", ROOT_KEY, "high")
