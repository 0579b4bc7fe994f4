"""The writer's login correlator (store/attempt_fold.py) with and without copy keys: SQLite's
folder keeps none (``tracks_copies`` False, one writer per store), and must release exactly
the attempts the shared store's does; the copy keys the shared store claims keep their order
(the primary's first, then its copies')."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackwatch.core.event import Event
from stackwatch.pipeline.reader import discover, read_events
from stackwatch.scenario import generate
from stackwatch.store.attempt_fold import AttemptCorrelator, copy_key, is_folded
from stackwatch.store.sqlite_attempts import AttemptFolder


class _NoCopies(AttemptCorrelator):
    tracks_copies = False


def _logins(corpus: Path) -> list[Event]:
    return [e for e in read_events(discover([str(corpus)])) if is_folded(e)]


def _run(folder: AttemptCorrelator, events: list[Event]) -> list[list[tuple[Any, ...]]]:
    """Push ``events`` 500 at a time as the writer does; each commit's released rows, copies
    taken (as the shared store's ``_claim`` does) when the folder keeps them."""
    out: list[list[tuple[Any, ...]]] = []
    seq = 1
    for start in range(0, len(events), 500):
        batch = events[start:start + 500]
        folder.push(batch, seq)
        seq += len(batch)
        rows = list(folder.released())
        if folder.tracks_copies:
            out.append([(*row, folder.copies(row)) for row in rows])
        else:
            out.append(rows)
        folder.written()
    folder.finish()
    out.append(list(folder.released()))
    return out


@pytest.mark.parametrize("source", ["generated", "shared"])
def test_a_folder_without_copy_keys_releases_the_same_attempts(source: str, corpus: Path,
                                                               tmp_path: Path) -> None:
    if source == "generated":  # the benchmarks' generator: logins in keystone.log and CADF both
        corpus = tmp_path / "logs"
        generate(corpus, seed=7, lines=40_000)
    events = _logins(corpus)
    tracked = _run(AttemptCorrelator(), events)
    plain = _run(_NoCopies(), events)
    with_copies = [row for rows in tracked[:-1] for row in rows if len(row[-1]) > 1]
    if source == "generated":  # logins seen twice (keystone.log and a notification): copies
        assert with_copies, "the generated corpus should hold logins stored as two copies"
    assert [[row[:-1] for row in rows] for rows in tracked[:-1]] + tracked[-1:] == plain
    for row in with_copies:
        keys = row[-1]
        assert keys[0] == copy_key(str(row[7]), str(row[9]), int(row[1]))
        assert len(set(keys)) == len(keys)


def test_sqlite_folder_keeps_no_copy_keys_and_says_so() -> None:
    assert AttemptFolder.tracks_copies is False
    with pytest.raises(RuntimeError):
        _NoCopies().copies((1, 0, "ip", "acct", "", "failure", "", "host", "kind", "ref", ""))
