"""keystone behind its fronts: HAProxy in front of uWSGI or of Apache httpd with mod_wsgi,
attacked from several loopback addresses.

A login attempt is written four times (HAProxy's HTTP log through rsyslog, the front's log:
uWSGI's request log or Apache's access log, keystone.log, the CADF notification); stackwatch
must count it once and attribute it to the real client, never to the proxy (127.0.0.1) nor to
an X-Forwarded-For the client forged.

* brute force: 35 logins as ``root`` (no such account: nothing locks) from 127.0.0.6, each
  with a forged ``X-Forwarded-For: 203.0.113.66``;
* one account tried once from each of nine addresses (127.0.0.7 to 127.0.0.15): no address
  is noisy, the account is (``auth.targeted_account`` over distinct sources).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackwatch.core.alert import Alert
from stackwatch.store import open_store
from stackwatch.store.base import EventQuery
from tests.producers.fronts import HAProxy, start_apache, start_haproxy
from tests.producers.keystone_server import Keystone, KeystoneClient
from tests.producers.observe import Slice, analyze_files, categories, read_events, serve_amqp

pytestmark = pytest.mark.integration

BRUTE_FORCE_IP = "127.0.0.6"
FORGED = "203.0.113.66"
BRUTE_FORCE_TRIES = 35
DISTRIBUTED_IPS = [f"127.0.0.{i}" for i in range(7, 16)]
PROXY_IP = "127.0.0.1"
CHANNELS = ["haproxy.log", "front.log", "keystone.log", "notifications.jsonl"]


@dataclass
class FrontCampaign:
    logs: dict[str, Path]  # channel -> the file it wrote during the campaign
    target: str  # the account tried from many addresses


def _wait_for_lines(path: Path, needle: str, count: int, timeout: float = 20.0, *,
                    since: Slice | None = None) -> None:
    """Until ``path`` holds ``count`` lines with ``needle`` (only those written after ``since``,
    when given: earlier tests' requests are in the same log)."""
    watched = since or Slice(path, 0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watched.gained().decode(errors="replace").count(needle) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} did not get {count} lines with {needle!r}")


def _attack_through(keystone: Keystone, haproxy: HAProxy, front_log: Path, folder: Path) -> FrontCampaign:
    target = f"shared-{secrets.token_hex(3)}"
    keystone.admin().create_user(target, "Shared-pw-1")
    keystone.notifications.drain(quiet=0.3)
    marks = {"keystone.log": Slice.mark(keystone.log_file), "front.log": Slice.mark(front_log),
             "haproxy.log": Slice.mark(haproxy.log_file)}
    forger = KeystoneClient("127.0.0.1", haproxy.port, BRUTE_FORCE_IP, {"X-Forwarded-For": FORGED})
    assert {forger.authenticate("root", f"toor{i}") for i in range(BRUTE_FORCE_TRIES)} == {401}
    for address in DISTRIBUTED_IPS:
        assert keystone.client(address, port=haproxy.port).authenticate(target, "Summer2026!") == 401
    attempts = BRUTE_FORCE_TRIES + len(DISTRIBUTED_IPS)
    _wait_for_lines(haproxy.log_file, "/v3/auth/tokens", attempts, since=marks["haproxy.log"])
    _wait_for_lines(front_log, "/v3/auth/tokens", attempts, since=marks["front.log"])
    logs = {name: mark.save(folder / name) for name, mark in marks.items()}
    logs["notifications.jsonl"] = folder / "notifications.jsonl"
    logs["notifications.jsonl"].write_text("".join(body + "\n" for body in keystone.notifications.drain()))
    return FrontCampaign(logs, target)


@pytest.fixture(scope="module", params=["uwsgi", "apache"])
def front(request: pytest.FixtureRequest, keystone: Keystone,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontCampaign]:
    """HAProxy in front of keystone's uWSGI (OpenStack-Ansible) or of Apache with mod_wsgi
    (Kolla-Ansible, TripleO), attacked through HAProxy."""
    folder = tmp_path_factory.mktemp(f"haproxy-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "uwsgi":
            backend_port, front_log = keystone.port, keystone.request_log
        else:
            # in keystone's folder: Apache's www-data cannot enter pytest's
            apache = stack.enter_context(start_apache(keystone.folder / "apache", keystone))
            backend_port, front_log = apache.port, apache.access_log
        haproxy = stack.enter_context(start_haproxy(folder / "haproxy", backend_port))
        yield _attack_through(keystone, haproxy, front_log, folder)


def _brute_force(alerts: list[Alert]) -> Alert:
    (alert,) = [a for a in alerts if a.category == "auth.bruteforce"]
    return alert


@pytest.mark.parametrize("channel", CHANNELS)
def test_each_front_alone_names_the_real_client(front: FrontCampaign, channel: str) -> None:
    alerts = analyze_files(front.logs[channel])
    alert = _brute_force(alerts)
    assert alert.source_ip == BRUTE_FORCE_IP
    assert alert.details["events"] == BRUTE_FORCE_TRIES
    assert {a.source_ip for a in alerts} & {PROXY_IP, FORGED} == set()


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_refused_login_is_parsed_with_the_real_client(front: FrontCampaign,
                                                            channel: str) -> None:
    # the notifications say which refusals were of the (by then) locked account
    failures = [e for e in read_events(front.logs[channel])
                if e.action in ("authenticate", "account.locked") and e.outcome == "failure"]
    assert len(failures) == BRUTE_FORCE_TRIES + len(DISTRIBUTED_IPS)
    assert {e.initiator.source_ip for e in failures} == {BRUTE_FORCE_IP, *DISTRIBUTED_IPS}


def test_all_four_together_count_each_failure_once(front: FrontCampaign) -> None:
    alerts = analyze_files(*front.logs.values())
    alert = _brute_force(alerts)
    assert alert.source_ip == BRUTE_FORCE_IP
    assert alert.details["events"] == BRUTE_FORCE_TRIES


def test_all_four_together_see_one_account_tried_from_many_addresses(front: FrontCampaign) -> None:
    alerts = analyze_files(*front.logs.values())
    targeted = [a for a in alerts if a.category == "auth.targeted_account"]
    # root: 35 failures for one name; the shared account: nine addresses
    assert {a.user for a in targeted} == {"root", front.target}
    assert categories(alerts) == {"auth.bruteforce", "auth.targeted_account", "auth.lockout"}
    assert {a.source_ip for a in alerts} & {PROXY_IP, FORGED} == set()


LIVE_IP = "127.0.0.16"
BRUTE_FORCE_THRESHOLD = 30  # rules/keystone/bruteforce_source_ip.yaml


def _brute_force_alerts(alerts: list[dict[str, object]]) -> list[dict[str, object]]:
    return [a for a in alerts if a["category"] == "auth.bruteforce" and a.get("source_ip") == LIVE_IP]


def test_serve_following_all_four_live_fires_at_the_threshold_not_before(keystone: Keystone,
                                                                          tmp_path: Path) -> None:
    # Live, the copies arrive in any order (the notification first, the files at their next
    # poll); counted more than once, 29 attempts would already be far past the threshold.
    with contextlib.ExitStack() as stack:
        haproxy = stack.enter_context(start_haproxy(tmp_path / "haproxy", keystone.port))
        serve = stack.enter_context(serve_amqp(tmp_path / "serve", keystone.exchange, keystone.topic,
                                               (keystone.log_file, keystone.request_log, haproxy.log_file)))
        client = keystone.client(LIVE_IP, port=haproxy.port)
        for i in range(BRUTE_FORCE_THRESHOLD - 1):
            assert client.authenticate("root", f"live{i}") == 401
        _wait_for_lines(haproxy.log_file, f"{LIVE_IP}:", BRUTE_FORCE_THRESHOLD - 1)
        time.sleep(5)  # every copy followed and correlated (file polls 0.1 s, window 2 s)
        assert _brute_force_alerts(serve.alerts()) == []
        assert client.authenticate("root", "live-last") == 401
        deadline = time.monotonic() + 30
        while not _brute_force_alerts(serve.alerts()) and time.monotonic() < deadline:
            time.sleep(0.2)
        [alert] = _brute_force_alerts(serve.alerts())
        assert alert["details"]["events"] == BRUTE_FORCE_THRESHOLD  # type: ignore[index]
    # and every copy was there to be counted once: all four followed live
    store = open_store(str(serve.data))
    try:
        stored = store.search_events(EventQuery(source_ip=LIVE_IP, action="authenticate", limit=1000))
    finally:
        store.close()
    kinds = Counter(event.event.kind for event in stored)
    every_copy = ("haproxy", "uwsgi_request", "oslo_log", "notification")
    assert kinds == dict.fromkeys(every_copy, BRUTE_FORCE_THRESHOLD)
