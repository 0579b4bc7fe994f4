"""A live tail on the shared PostgreSQL store follows every writer (store/postgres/ticks.py):
two writer processes commit in turn and at once, a reader polls ``after_seq`` with the cursor
``tail_cursor`` gives, and gets every event exactly once, including those a lower-numbered
writer commits after a higher-numbered one (whose ids are lower than ids already seen)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwatch.store.base import EventQuery, Store
from stackwatch.store.postgres import open_store
from tests.pgdb import fresh_database

ROOT = Path(__file__).parents[2]

WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime, timedelta
    sys.path[:0] = sys.argv[3:]
    from stackwatch.store.postgres import open_store
    from stackwatch.testing import make_event
    name = sys.argv[2]
    store = open_store(sys.argv[1], writer=name, batch_size=1000)
    print("ready", store.start_writer().writer, flush=True)
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    n = 0
    for line in sys.stdin:  # "append K": K events in one commit; "burst B K": B commits of K
        words = line.split()
        batches, size = (1, int(words[1])) if words[0] == "append" else (int(words[1]), int(words[2]))
        ids = []
        for _ in range(batches):
            events = [make_event(time=t0 + timedelta(seconds=n + i), host=name, service="sshd",
                                 message=f"{name} event {n + i}") for i in range(size)]
            n += size
            ids += store.append_events(events)
            store.flush()
        print("done", *ids, flush=True)
    store.close()
""")


class Writer:
    def __init__(self, url: str, name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, name, str(ROOT / "src"), str(ROOT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self._line()
        assert ready[0] == "ready", ready
        self.number = int(ready[1])

    def _line(self) -> list[str]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the writer exited ({self.proc.wait(timeout=30)})"
        return line.split()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def ids(self) -> list[int]:
        words = self._line()
        assert words[0] == "done", words
        return [int(w) for w in words[1:]]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_database() as database:
        yield database


class Tail:
    """What the web's live tail does: poll after the cursor, take the next cursor."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cursor = store.tail_cursor([], None)
        self.got: list[int] = []

    def poll(self) -> None:
        found = self.store.search_events(EventQuery(after_seq=self.cursor, limit=10_000, newest_first=False))
        self.got += [e.seq for e in found]
        self.cursor = self.store.tail_cursor(found, self.cursor)


def test_commits_in_turn_are_all_followed(url: str) -> None:
    low = Writer(url, "w-low")
    high = Writer(url, "w-high")
    try:
        assert (low.number, high.number) == (0, 1)
        with open_store(url, read_only=True) as store:
            tail = Tail(store)
            expected: list[int] = []
            for _ in range(3):
                high.send("append 4")
                expected += high.ids()
                tail.poll()
                low.send("append 3")
                ids = low.ids()
                assert max(ids) < max(tail.got)  # below ids already seen: an id cursor skips them
                expected += ids
                tail.poll()
            tail.poll()  # nothing new: nothing again
        assert sorted(tail.got) == sorted(expected) and len(tail.got) == len(set(tail.got)) == 21
    finally:
        low.close()
        high.close()


def test_concurrent_writers_are_followed_exactly_once(url: str) -> None:
    writers = [Writer(url, f"w{i}") for i in range(2)]
    try:
        with open_store(url, read_only=True) as store:
            tail = Tail(store)
            for w in writers:
                w.send("burst 40 5")
            deadline = time.monotonic() + 120
            done: list[list[int]] = []
            import select

            pending = {w.proc.stdout.fileno(): w for w in writers if w.proc.stdout is not None}
            while pending and time.monotonic() < deadline:
                tail.poll()
                ready, _, _ = select.select(list(pending), [], [], 0.01)
                for fd in ready:
                    done.append(pending.pop(fd).ids())
            assert not pending, "the writers did not finish"
            tail.poll()
        expected = sorted(i for ids in done for i in ids)
        assert len(expected) == 400
        assert sorted(tail.got) == expected  # every event, none twice
    finally:
        for w in writers:
            w.close()


def test_the_web_tail_polls_with_commit_positions(url: str, tmp_path: Path) -> None:
    """The search page's poll (/search/tail) and the API give the cursor to poll with next: on the
    shared store a commit position (``data-after`` on the rows, ``last_seq`` in the API)."""
    from fastapi.testclient import TestClient

    from tests.api.conftest import log_in, make_app, services_over

    low, high = Writer(url, "w-low"), Writer(url, "w-high")
    services = services_over(tmp_path, store=url)
    try:
        with TestClient(make_app(services)) as client:
            log_in(client, "vic")
            span = {"from": "2026-04-30", "to": "2026-05-02"}  # the events' day
            page = client.get("/search", params={"q": "", **span}).text
            assert 'data-last-seq="0"' in page  # nothing committed yet
            high.send("append 2")
            high.ids()
            rows = client.get("/search/tail", params={"q": "", "after": 0, **span}).text
            assert rows.count('data-after="1"') == 2
            low.send("append 3")
            later = low.ids()
            rows = client.get("/search/tail", params={"q": "", "after": 1, **span}).text
            assert rows.count('data-after="2"') == 3
            assert all(f'data-seq="{i}"' in rows for i in later)
            api = client.get("/api/v1/search", params={"q": "", "after": 0, **span}).json()
            assert len(api["events"]) == 5 and api["last_seq"] == 2
    finally:
        services.close()
        low.close()
        high.close()
