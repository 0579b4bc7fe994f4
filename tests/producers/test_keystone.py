"""A real keystone attacked for real: what its log and its CADF notifications make stackwatch say.

One campaign against the session's keystone, each attack from its own loopback address and
against its own accounts (keystone counts lockout per account, so attacks must not share one):

* brute force: 40 wrong passwords for one account from 127.0.0.2 (locked after 5);
* spraying: 12 accounts that do not exist, one try each, from 127.0.0.3;
* success after failures: 10 wrong passwords then the right one from 127.0.0.4 (an account
  exempt from lockout, as service accounts are): ten distinct password hashes from one address
  for one account, which the partial_password_hash rules see as guessing;
* expired password: a login with the right but expired password from 127.0.0.5;
* deletions: a user, a project and a domain deleted by the admin.

Then stackwatch judges keystone.log alone, the notifications alone (a file for ``analyze``,
and RabbitMQ for a running ``serve``) and both together.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackwatch.core.alert import Alert
from tests.producers.keystone_server import Keystone
from tests.producers.observe import Slice, analyze_files, categories, read_events, serve_amqp

pytestmark = pytest.mark.integration

BRUTE_FORCE_IP, SPRAYING_IP, SUCCESS_IP, EXPIRED_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
BRUTE_FORCE_TRIES = 40
SPRAYED = [f"nosuch{i:02d}" for i in range(12)]
SUCCESS_FAILURES = 10
LOCKOUT_AFTER = 5  # keystone_server's lockout_failure_attempts


@dataclass
class Campaign:
    keystone_log: Path
    notifications: Path
    serve_alerts: list[dict[str, object]]
    victim: str  # brute-forced account (name)
    persistent: str  # the account that got in after failures
    expired: str  # the account whose password expired
    deleted_user: str
    deleted_project: str
    deleted_domain: str


def _attack(keystone: Keystone) -> dict[str, str]:
    tag = secrets.token_hex(3)
    admin = keystone.admin()
    victim, persistent, expired = f"victim-{tag}", f"svc-{tag}", f"stale-{tag}"
    admin.create_user(victim, "Victim-pw-1")
    persistent_password = "Persistent-pw-1"
    admin.create_user(persistent, persistent_password, ignore_lockout_failure_attempts=True)
    expired_id = admin.create_user(expired, "Expired-pw-1")
    keystone.expire_password(expired_id)
    project = admin.create_project(f"doomed-{tag}")
    doomed_user = admin.create_user(f"leaver-{tag}", "Leaver-pw-1", project_id=project)
    domain = admin.create_domain(f"doomed-{tag}")

    brute = keystone.client(BRUTE_FORCE_IP)
    assert [brute.authenticate(victim, f"guess-{i}") for i in range(BRUTE_FORCE_TRIES)] == [401] * 40
    spray = keystone.client(SPRAYING_IP)
    assert [spray.authenticate(name, "Winter2026!") for name in SPRAYED] == [401] * len(SPRAYED)
    persistent_client = keystone.client(SUCCESS_IP)
    failures = [persistent_client.authenticate(persistent, f"nope-{i}") for i in range(SUCCESS_FAILURES)]
    assert failures == [401] * SUCCESS_FAILURES
    assert persistent_client.authenticate(persistent, persistent_password) == 201
    assert keystone.client(EXPIRED_IP).authenticate(expired, "Expired-pw-1") == 401

    admin.delete_user(doomed_user)
    admin.delete_project(project)
    admin.delete_domain(domain)
    return {"victim": victim, "persistent": persistent, "expired": expired, "deleted_user": doomed_user,
            "deleted_project": project, "deleted_domain": domain}


@pytest.fixture(scope="module")
def campaign(keystone: Keystone, tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    folder = tmp_path_factory.mktemp("keystone-campaign")
    keystone.notifications.drain(quiet=0.3)  # what came before is not this campaign's
    log = Slice.mark(keystone.log_file)
    with serve_amqp(folder / "serve", keystone.exchange, keystone.topic) as serve:
        names = _attack(keystone)
        bodies = keystone.notifications.drain()
        notifications = folder / "notifications.jsonl"
        notifications.write_text("".join(body + "\n" for body in bodies))
        serve_alerts = serve.wait_for_categories(CADF_CATEGORIES)
    return Campaign(keystone_log=log.save(folder / "keystone.log"), notifications=notifications,
                    serve_alerts=serve_alerts, **names)


# What each view of the campaign can tell. keystone 30's log hides why a login failed (a locked
# account gets the generic "requires authentication"), never logs a success and logs no deletion;
# only the notifications say so.
LOG_CATEGORIES = {"auth.bruteforce", "auth.spraying", "auth.lockout"}
CADF_CATEGORIES = {"auth.bruteforce", "auth.spraying", "auth.lockout", "auth.targeted_account",
                   "auth.success_after_failures", "identity.orphaned_resources"}


def _by_category(alerts: list[Alert], category: str) -> list[Alert]:
    return [alert for alert in alerts if alert.category == category]


def test_keystone_log_alone_raises_exactly_what_it_can_tell(campaign: Campaign) -> None:
    assert categories(analyze_files(campaign.keystone_log)) == LOG_CATEGORIES


def test_keystone_log_alone_attributes_each_attack_to_its_address(campaign: Campaign) -> None:
    alerts = analyze_files(campaign.keystone_log)
    assert {a.source_ip for a in _by_category(alerts, "auth.bruteforce")} == {BRUTE_FORCE_IP}
    assert {a.source_ip for a in _by_category(alerts, "auth.spraying")} == {SPRAYING_IP}


def test_keystone_log_alone_names_the_expired_account_by_id(campaign: Campaign) -> None:
    (expired,) = _by_category(analyze_files(campaign.keystone_log), "auth.lockout")
    assert expired.source_ip == EXPIRED_IP and expired.user


def test_every_keystone_log_failure_is_parsed(campaign: Campaign) -> None:
    events = read_events(campaign.keystone_log)
    refused = ("authenticate", "password.expired")
    failures = [e for e in events if e.action in refused and e.outcome == "failure"]
    expected = BRUTE_FORCE_TRIES + len(SPRAYED) + SUCCESS_FAILURES + 1
    assert len(failures) == expected
    assert all(e.initiator.source_ip for e in failures)
    not_found = {e.initiator.name for e in events if e.action == "user.not_found"}
    assert not_found == set(SPRAYED)


@pytest.mark.parametrize("view", ["file", "serve"])
def test_notifications_alone_raise_every_expected_category(campaign: Campaign, view: str) -> None:
    alerts = analyze_files(campaign.notifications) if view == "file" else campaign.serve_alerts
    assert categories(alerts) == CADF_CATEGORIES


def test_notifications_name_the_attacked_and_deleted_entities(campaign: Campaign) -> None:
    alerts = analyze_files(campaign.notifications)
    # 127.0.0.4's ten distinct password hashes are guessing too (bruteforce_password_hashes)
    assert {a.source_ip for a in _by_category(alerts, "auth.bruteforce")} == {BRUTE_FORCE_IP, SUCCESS_IP}
    assert {a.user for a in _by_category(alerts, "auth.targeted_account")} == {campaign.victim,
                                                                               campaign.persistent}
    assert {a.source_ip for a in _by_category(alerts, "auth.spraying")} == {SPRAYING_IP}
    lockouts = _by_category(alerts, "auth.lockout")
    assert {a.source_ip for a in lockouts} == {BRUTE_FORCE_IP, EXPIRED_IP}
    assert {a.source_ip for a in _by_category(alerts, "auth.success_after_failures")} == {SUCCESS_IP}
    orphaned_alerts = _by_category(alerts, "identity.orphaned_resources")
    assert campaign.deleted_user in {a.user for a in orphaned_alerts}
    assert campaign.deleted_project in {a.project for a in orphaned_alerts}
    orphaned = {(a.title, a.key) for a in orphaned_alerts}
    # keystone deletes a domain's own project (the domain is a project acting as domain) and says so
    assert orphaned == {("Keystone user deleted", campaign.deleted_user),
                        ("Keystone project deleted", campaign.deleted_project),
                        ("Keystone project deleted", campaign.deleted_domain),
                        ("Keystone domain deleted", campaign.deleted_domain)}


def test_serve_names_the_same_sources_as_analyze(campaign: Campaign) -> None:
    by_category: dict[str, set[object]] = {}
    for alert in campaign.serve_alerts:
        by_category.setdefault(str(alert["category"]), set()).add(alert.get("source_ip"))
    assert by_category["auth.bruteforce"] == {BRUTE_FORCE_IP, SUCCESS_IP}
    assert by_category["auth.spraying"] == {SPRAYING_IP}
    assert by_category["auth.success_after_failures"] == {SUCCESS_IP}


def test_log_and_notifications_together_raise_the_union(campaign: Campaign) -> None:
    assert categories(analyze_files(campaign.keystone_log, campaign.notifications)) == CADF_CATEGORIES


def _brute_force_events(alerts: list[Alert]) -> int:
    (alert,) = [a for a in _by_category(alerts, "auth.bruteforce") if a.source_ip == BRUTE_FORCE_IP]
    return int(alert.details["events"])  # type: ignore[call-overload]


def test_log_and_notifications_together_count_each_failure_once(campaign: Campaign) -> None:
    # keystone.log says 'failure' 40 times; the notifications say which 5 carried a password hash
    # (left to the hash rules) and which 35 were refusals of the locked account
    assert _brute_force_events(analyze_files(campaign.keystone_log)) == BRUTE_FORCE_TRIES
    alone = _brute_force_events(analyze_files(campaign.notifications))
    together = _brute_force_events(analyze_files(campaign.keystone_log, campaign.notifications))
    assert together == alone == BRUTE_FORCE_TRIES - LOCKOUT_AFTER
