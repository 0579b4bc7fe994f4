"""Alert triage in each backend (embedded SQLite, PostgreSQL): sorting, counting, assignees,
status changes of many alerts in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.alert import Alert
from stackwatch.store.base import AlertQuery, NotFoundError, QueryError, Store
from stackwatch.store.sqlite import SQLiteStore


def _open(request: pytest.FixtureRequest, folder: Path) -> Store:
    if request.param == "sqlite":
        return SQLiteStore(folder, background_index=False)
    from stackwatch.store.postgres import open_store

    return open_store(request.getfixturevalue("pg_database"), schema=f"t_{folder.name.lower()[-40:]}")

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
# (key, severity, title, host, minutes after T0 last seen)
ROWS = [("a", "low", "Bravo", "ctl2", 3), ("b", "critical", "Alpha", "ctl1", 1),
        ("c", "medium", "Charlie", None, 2)]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with _open(request, tmp_path) as opened:
        opened.upsert_alerts([
            Alert(rule=f"rule-{key}", title=title, category="auth.bruteforce", severity=severity,
                  time=T0, last_seen=T0 + timedelta(minutes=minutes), key=key, host=host)
            for key, severity, title, host, minutes in ROWS
        ])
        yield opened


@pytest.mark.parametrize(("sort", "descending", "keys"), [
    ("time", True, ["a", "c", "b"]),
    ("time", False, ["b", "c", "a"]),
    ("severity", True, ["b", "c", "a"]),
    ("severity", False, ["a", "c", "b"]),
    ("rule", False, ["b", "a", "c"]),
    ("host", False, ["c", "b", "a"]),
    ("host", True, ["a", "b", "c"]),
])
def test_alerts_sort_by_time_severity_rule_or_host(store: Store, sort: str, descending: bool,
                                                   keys: list[str]) -> None:
    found = store.alerts(AlertQuery(sort=sort, descending=descending))
    assert [a.alert.key for a in found] == keys


def test_an_unknown_sort_is_refused() -> None:
    with pytest.raises(QueryError):
        AlertQuery(sort="summary; DROP TABLE alerts")


def test_the_count_ignores_the_page(store: Store) -> None:
    assert store.count_alerts(AlertQuery(limit=1, offset=2)) == 3
    assert store.count_alerts(AlertQuery(severity="critical")) == 1


def test_assigning_records_history_and_filters(store: Store) -> None:
    target = store.alerts(AlertQuery(rule="rule-a"))[0].id
    assigned = store.set_alert_assignee(target, "rex", actor="ada")
    assert assigned.assignee == "rex"
    assert assigned.history[-1].actor == "ada" and assigned.history[-1].comment == "assigned to rex"
    assert [a.id for a in store.alerts(AlertQuery(assignee="rex"))] == [target]
    cleared = store.set_alert_assignee(target, None, actor="ada")
    assert cleared.assignee is None and store.count_alerts(AlertQuery(assignee="rex")) == 0


def test_assigning_an_unknown_alert_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.set_alert_assignee(999, "rex", actor="ada")


def test_many_alerts_change_status_at_once_and_unknown_ids_are_left_out(store: Store) -> None:
    ids = [a.id for a in store.alerts()]
    changed = store.set_alerts_status([*ids, 999], "acknowledged", actor="rex", comment="known scan")
    assert [a.id for a in changed] == ids
    assert {a.alert.status for a in store.alerts()} == {"acknowledged"}
    assert all(a.history[-1].comment == "known scan" for a in changed)
