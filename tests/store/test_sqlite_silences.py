"""Silences in each backend (embedded SQLite, PostgreSQL): they mark the alerts they match (now
and at every firing while they last), expire and delete cleanly, and ``key: ''`` mutes every
key of a rule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.alert import Alert
from stackwatch.store.base import NotFoundError, Store
from stackwatch.store.sqlite import SQLiteStore


def _open(request: pytest.FixtureRequest, folder: Path) -> Store:
    if request.param == "sqlite":
        return SQLiteStore(folder, background_index=False)
    from stackwatch.store.postgres import open_store

    return open_store(request.getfixturevalue("pg_database"), schema=f"t_{folder.name.lower()[-40:]}")

RULE = "3f1e2d9c-0000-4000-8000-00000000abcd"
NOW = datetime.now(UTC)


def _alert(key: str, rule: str = RULE) -> Alert:
    return Alert(rule=rule, title="brute force", category="auth.bruteforce", severity="high", time=NOW,
                 last_seen=NOW, key=key, source_ip=key)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with _open(request, tmp_path) as opened:
        yield opened


def _silence(store: Store, key: str, hours: float = 1.0) -> int:
    return store.create_silence(RULE, key, ends=datetime.now(UTC) + timedelta(hours=hours), actor="rex",
                                reason="pen test").id


def test_an_alert_firing_during_a_silence_is_stored_and_marked(store: Store) -> None:
    silence = _silence(store, "203.0.113.9")
    [alert_id] = store.upsert_alerts([_alert("203.0.113.9")])
    assert store.get_alert(alert_id).silenced_by == silence  # type: ignore[union-attr]


def test_other_keys_and_rules_are_not_muted(store: Store) -> None:
    _silence(store, "203.0.113.9")
    other_key, other_rule = store.upsert_alerts([_alert("198.51.100.7"), _alert("203.0.113.9", rule="other")])
    assert store.get_alert(other_key).silenced_by is None  # type: ignore[union-attr]
    assert store.get_alert(other_rule).silenced_by is None  # type: ignore[union-attr]


def test_an_empty_key_mutes_every_key_of_the_rule(store: Store) -> None:
    silence = _silence(store, "")
    ids = store.upsert_alerts([_alert("198.51.100.7"), _alert("203.0.113.9")])
    assert {store.get_alert(i).silenced_by for i in ids} == {silence}  # type: ignore[union-attr]


def test_creating_a_silence_marks_the_alerts_already_stored(store: Store) -> None:
    [alert_id] = store.upsert_alerts([_alert("203.0.113.9")])
    silence = _silence(store, "203.0.113.9")
    assert store.get_alert(alert_id).silenced_by == silence  # type: ignore[union-attr]


def test_expiring_unmarks_and_the_next_firing_is_not_muted(store: Store) -> None:
    silence = _silence(store, "203.0.113.9")
    [alert_id] = store.upsert_alerts([_alert("203.0.113.9")])
    expired = store.expire_silence(silence, actor="ada")
    assert expired.expired is not None and expired.expired_by == "ada"
    assert not expired.active(datetime.now(UTC))
    assert store.get_alert(alert_id).silenced_by is None  # type: ignore[union-attr]
    store.upsert_alerts([_alert("203.0.113.9")])
    assert store.get_alert(alert_id).silenced_by is None  # type: ignore[union-attr]


def test_a_silence_that_has_ended_mutes_nothing(store: Store) -> None:
    _silence(store, "203.0.113.9", hours=-1)
    [alert_id] = store.upsert_alerts([_alert("203.0.113.9")])
    assert store.get_alert(alert_id).silenced_by is None  # type: ignore[union-attr]


def test_silences_are_listed_newest_first_with_who_and_why(store: Store) -> None:
    first, second = _silence(store, "a"), _silence(store, "b")
    listed = store.silences()
    assert [s.id for s in listed] == [second, first]
    assert (listed[0].created_by, listed[0].reason, listed[0].rule) == ("rex", "pen test", RULE)


def test_deleting_removes_it_and_unmarks_its_alerts(store: Store) -> None:
    silence = _silence(store, "203.0.113.9")
    [alert_id] = store.upsert_alerts([_alert("203.0.113.9")])
    assert store.delete_silence(silence).id == silence
    assert store.silences() == []
    assert store.get_alert(alert_id).silenced_by is None  # type: ignore[union-attr]


@pytest.mark.parametrize("action", ["expire", "delete"])
def test_an_unknown_silence_is_not_found(store: Store, action: str) -> None:
    with pytest.raises(NotFoundError):
        store.expire_silence(99, actor="ada") if action == "expire" else store.delete_silence(99)
