"""Keystone access analytics on hand-made events: counting, dedup of copies, classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stackwatch.api.analytics import build_report, report_csv
from stackwatch.core.event import Event
from stackwatch.testing import make_event

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def login(
    i: int,
    ip: str,
    name: str | None,
    outcome: str = "failure",
    pw: str | None = None,
    kind: str = "cadf",
    step: float = 10.0,
) -> Event:
    attrs = {"partial_password_hash": pw} if pw else {}
    return make_event(
        service="keystone",
        action="authenticate",
        outcome=outcome,
        kind=kind,
        time=T0 + timedelta(seconds=i * step),
        initiator={"source_ip": ip, "name": name},
        attrs=attrs,
        ref=f"x:{ip}:{name}:{i}:{kind}",
    )


def test_the_copies_of_one_login_count_once_and_lend_their_user_name() -> None:
    cadf = login(0, "203.0.113.9", "bob", pw="h1")
    access = login(0, "203.0.113.9", None, kind="httpd_access")
    report = build_report(sorted([access, cadf], key=lambda e: e.time))
    assert report.failures == 1
    assert [a.account for a in report.timeline(ip="203.0.113.9")] == ["bob"]


def test_brute_force_is_many_failures_with_changing_passwords() -> None:
    events = [login(i, "203.0.113.9", "bob", pw=f"h{i}") for i in range(12)]
    report = build_report(events)
    assert report.ips[0].classification == "brute_force"
    assert report.accounts[0].classification == "brute_force"


def test_spraying_is_one_address_against_many_accounts() -> None:
    events = [login(i, "198.51.100.1", f"user{i}", pw="same") for i in range(6)]
    report = build_report(events)
    assert report.ips[0].classification == "spraying"
    assert all(a.classification == "" for a in report.accounts)


def test_targeted_is_one_account_from_many_addresses() -> None:
    events = [login(i, f"192.0.2.{i}", "admin", pw=f"h{i}") for i in range(5)]
    report = build_report(events, privileged=["admin"])
    assert report.accounts[0].classification == "targeted" and report.accounts[0].privileged


def test_stale_credentials_is_the_same_wrong_password_again_and_again() -> None:
    events = [login(i, "10.0.0.5", "svc_backup", pw="constant", step=600) for i in range(20)]
    report = build_report(events)
    assert report.accounts[0].classification == "stale_credentials"
    assert report.ips[0].classification == "stale_credentials"  # not brute force, despite 20 failures


def test_four_accounts_are_not_yet_spraying() -> None:
    events = [login(i, "198.51.100.1", f"user{i}", pw="same") for i in range(4)]
    assert build_report(events).ips[0].classification == ""


def test_restricting_to_accounts_leaves_the_others_out() -> None:
    events = [login(0, "192.0.2.1", "alice"), login(1, "192.0.2.1", "bob"), login(2, "192.0.2.2", "bob")]
    report = build_report(events, accounts=["bob"])
    assert {a.account for a in report.accounts} == {"bob"} and report.failures == 2


def test_failures_over_time_add_up() -> None:
    events = [login(i, "192.0.2.1", "alice", step=97) for i in range(50)]
    events.append(login(51, "192.0.2.1", "alice", outcome="success", step=97))
    report = build_report(events)
    assert sum(b[1] for b in report.buckets) == 50 and sum(b[2] for b in report.buckets) == 1
    assert len(report.buckets) <= 60


def test_csv_export_neutralises_formulas_in_account_names() -> None:
    report = build_report([login(0, "192.0.2.1", '=HYPERLINK("http://x")')])
    text = report_csv(report)
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
