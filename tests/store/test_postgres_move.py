"""``stackwatch store migrate DATA_FOLDER --to postgresql://...``: one machine's embedded store
becomes a writer log of the shared store; the history stays provable and every answer the
same (search, report auth, alerts with their triage, silences), and an analyzer continues it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from stackwatch.scenario import demo_dataset
from stackwatch.store import AlertQuery, open_store
from stackwatch.store.base import Silence
from stackwatch.store.seal import Checkpoint, verify_checkpoint_signature
from tests.pgdb import fresh_database
from tests.store.test_postgres_cli import cli, k0_of


class Moved:
    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url
        self.folder = root / "laptop"
        self.logs = demo_dataset(root / "logs", seed=11)
        self.wkeys = root / "laptop-keys"
        self.folder_k0 = ""
        self.k0 = ""
        self.output = ""


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moved]:
    """A folder analyzed and triaged (an alert acknowledged with a comment, one assigned, a
    silence), then moved into a fresh shared store as writer ``laptop``."""
    with fresh_database() as url:
        m = Moved(tmp_path_factory.mktemp("pgmove"), url)
        m.folder_k0 = k0_of(cli("store", "init", "--data", str(m.folder)).stdout)
        cli("analyze", str(m.logs), "--data", str(m.folder))
        with open_store(m.folder) as store:
            first, second = store.alerts(AlertQuery(limit=2))
            store.set_alert_status(first.id, "acknowledged", actor="ops", comment="looking at it")
            store.set_alert_assignee(second.id, "alice", actor="ops")
            store.create_silence(first.alert.rule, "", ends=datetime.now(UTC) + timedelta(days=3),
                                 actor="ops", reason="maintenance")
        done = cli("store", "migrate", str(m.folder), "--to", url, "--writer", "laptop",
                   "--writer-keys", str(m.wkeys), "--key", m.folder_k0)
        m.output, m.k0 = done.stdout, k0_of(done.stdout)
        yield m


def _search(data: str, query: str) -> list[dict[str, object]]:
    found = json.loads(cli("search", "--data", data, "--since", "2000-01-01", "-f", "json", "--limit", "500",
                           query).stdout)
    return found  # type: ignore[no-any-return]


def test_search_and_report_auth_answer_the_same(moved: Moved) -> None:
    for query in ("action:authenticate AND outcome:failure", "sshd", "kind:admin"):
        before, after = _search(str(moved.folder), query), _search(moved.url, query)
        assert before, query
        # the same events; an event's number in the new log is its folder seq + 1 (the anchor is 1),
        # and the new log has the anchor itself
        assert [e["Action"] for e in after if e["Action"] == "store.migrate"] == (
            ["store.migrate"] if query == "kind:admin" else [])
        after = [e for e in after if e["Action"] != "store.migrate"]
        assert [{**e, "Seq": int(e["Seq"]) + 1} for e in before] == after, query  # type: ignore[call-overload]
    report = cli("report", "auth", "--data", str(moved.folder), "--since", "2000-01-01").stdout
    assert "Failures by source IP" in report
    assert cli("report", "auth", "--data", moved.url, "--since", "2000-01-01").stdout == report


def test_alerts_keep_their_identity_and_triage(moved: Moved) -> None:
    with open_store(moved.folder, read_only=True) as folder, open_store(moved.url, read_only=True) as shared:
        before = sorted(folder.alerts(AlertQuery(limit=1000)), key=lambda a: (a.alert.rule, a.alert.key))
        after = sorted(shared.alerts(AlertQuery(limit=1000)), key=lambda a: (a.alert.rule, a.alert.key))
        assert len(before) == len(after) > 2
        for old, new in zip(before, after, strict=True):
            assert replace(new, id=old.id, silenced_by=None) == replace(old, silenced_by=None)
            full_old, full_new = folder.get_alert(old.id), shared.get_alert(new.id)
            assert full_old is not None and full_new is not None
            assert full_new.history == full_old.history and full_new.alert.evidence == full_old.alert.evidence
        assert {a.alert.status for a in after} >= {"acknowledged"}
        assert {a.assignee for a in after} >= {"alice"}
        def fields(found: list[Silence]) -> list[tuple[object, ...]]:
            return [(s.rule, s.key, s.created, s.created_by, s.reason, s.ends, s.expired) for s in found]

        assert fields(shared.silences()) == fields(folder.silences())


def test_the_new_log_verifies_and_its_first_record_anchors_the_folder(moved: Moved) -> None:
    done = cli("store", "verify", "--data", moved.url, "--key", f"laptop={moved.k0}",
               "--keys", f"laptop={moved.wkeys}")
    assert done.stdout.rstrip().endswith("RESULT: OK"), done.stdout
    with open_store(moved.url, read_only=True) as shared:
        (anchor,) = shared.get_events([1])  # writer 0's record 1
    assert anchor.event.action == "store.migrate"
    details = anchor.event.attrs
    db = sqlite3.connect(moved.folder / "stackwatch.db")
    epoch, size, body, signature = db.execute(
        "SELECT epoch, size, body, signature FROM checkpoints ORDER BY epoch DESC LIMIT 1").fetchone()
    (public,) = db.execute("SELECT public_key FROM signers ORDER BY from_epoch DESC LIMIT 1").fetchone()
    db.close()
    # the folder's last signed checkpoint, which an auditor checks offline with the folder's key
    assert (details["epoch"], details["size"]) == (epoch, size)
    assert bytes.fromhex(details["checkpoint"]) == body and bytes.fromhex(details["signature"]) == signature
    assert details["root"] == Checkpoint.from_bytes(body).root.hex() and details["public_key"] == public.hex()
    assert verify_checkpoint_signature(public, body, signature)
    assert f"root {details['root']}" in moved.output


def test_an_analyzer_continues_the_log_and_stores_nothing_twice(moved: Moved) -> None:
    with psycopg.connect(moved.url) as conn:
        files = conn.execute("SELECT count(*) FROM stackwatch.ingested_files "
                             "WHERE writer = 'laptop'").fetchone()
        (before,) = conn.execute("SELECT count(*) FROM stackwatch.events").fetchone()  # type: ignore[misc]
    assert files is not None and files[0] > 0
    cli("analyze", str(moved.logs), "--data", f"{moved.url}?writer=laptop&keys={moved.wkeys}")
    with psycopg.connect(moved.url) as conn:
        (after,) = conn.execute("SELECT count(*) FROM stackwatch.events").fetchone()  # type: ignore[misc]
    assert after - before <= 1  # nothing re-read (at most the clean close's own records)
    done = cli("store", "verify", "--data", moved.url, "--key", f"laptop={moved.k0}")
    assert done.stdout.rstrip().endswith("RESULT: OK"), done.stdout


def test_refused_for_a_known_writer_or_a_folder_that_does_not_verify(moved: Moved, tmp_path: Path) -> None:
    again = cli("store", "migrate", str(moved.folder), "--to", moved.url, "--writer", "laptop",
                "--writer-keys", str(tmp_path / "k1"), check=False)
    assert again.returncode == 1 and "already has a log" in again.stderr
    from tests.store.blocks_attack import BlockAttacker

    folder = tmp_path / "other"
    k0 = k0_of(cli("store", "init", "--data", str(folder)).stdout)
    cli("analyze", str(moved.logs), "--data", str(folder))
    BlockAttacker(folder).run((("flip_byte", 40),))
    done = cli("store", "migrate", str(folder), "--to", moved.url, "--writer", "other",
               "--writer-keys", str(tmp_path / "k2"), "--key", k0, check=False)
    assert done.returncode == 1 and "does not verify" in done.stderr, done.stderr
    with open_store(moved.url, read_only=True) as shared:
        assert [name for _, name in shared.writers()] == ["laptop"]  # nothing of it was written


def test_a_second_machine_folds_into_the_same_alerts(moved: Moved, tmp_path: Path) -> None:
    """Two machines that saw the same logs moved in turn: one alert per identity, the first
    one's triage kept, the second one's sightings and history folded in; both logs verify."""
    import shutil

    first = tmp_path / "first"
    shutil.copytree(moved.folder, first)  # the module's folder stays as the other tests read it
    second = tmp_path / "second"
    cli("store", "init", "--data", str(second))
    cli("analyze", str(moved.logs), "--data", str(second))
    with fresh_database() as url:
        for name, folder in (("one", first), ("two", second)):
            cli("store", "migrate", str(folder), "--to", url, "--writer", name, "--writer-keys",
                str(tmp_path / f"{name}-keys"))
        with open_store(first, read_only=True) as one, open_store(second, read_only=True) as two, \
                open_store(url, read_only=True) as shared:
            mine = {(a.alert.rule, a.alert.key): a for a in one.alerts(AlertQuery(limit=1000))}
            theirs = {(a.alert.rule, a.alert.key): a for a in two.alerts(AlertQuery(limit=1000))}
            both = {(a.alert.rule, a.alert.key): a for a in shared.alerts(AlertQuery(limit=1000))}
            assert both.keys() == mine.keys() | theirs.keys()
            for identity, alert in both.items():
                a, b = mine.get(identity), theirs.get(identity)
                if a is None or b is None:
                    continue
                assert alert.alert.status == a.alert.status and alert.assignee == a.assignee
                assert alert.alert.count == max(a.alert.count, b.alert.count)
                history = shared.get_alert(alert.id).history  # type: ignore[union-attr]
                assert len(history) == len(one.get_alert(a.id).history) + len(two.get_alert(b.id).history)  # type: ignore[union-attr]
            assert any(a.alert.status == "acknowledged" for a in both.values())
        done = cli("store", "verify", "--data", url)
        assert "writer one:" in done.stdout and "writer two:" in done.stdout
