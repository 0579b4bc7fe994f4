"""analyze() takes events a list at a time; the engine, the store and the progress display
must still see exactly what the one-event-at-a-time loop showed them, in the same order."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackwatch.core.event import Event
from stackwatch.pipeline import analyze as analyze_module
from stackwatch.pipeline.reader import ReadProgress, discover, read_events

OSLO = "2017-05-16 00:{minute:02d}:{sec:02d}.{ms:03d} 25746 INFO nova.api [-] {host} line {n}"


class Recorder:
    """Engine and store in one: every call, in order."""

    # the store's optional capability (store/base.Store), declared as every store declares it:
    # analyze() then parses every record in full, as it does for the stores we ship
    takes_header_events = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def process(self, event: Event) -> None:
        self.calls.append(("process", event.message))

    def finish(self) -> None:
        self.calls.append(("finish", None))

    def alerts(self) -> list[object]:
        return []

    def append_events(self, events: list[Event]) -> None:
        self.calls.append(("append", [event.message for event in events]))

    def upsert_alerts(self, alerts: list[object]) -> None:
        self.calls.append(("upsert", len(alerts)))

    def flush(self) -> None:
        self.calls.append(("flush", None))


def one_at_a_time(inputs, recorder: Recorder, store: Recorder | None, progress_every: int,
                  store_batch: int) -> None:
    """The loop analyze() ran before it took lists: the reference order of calls."""
    batch: list[Event] = []
    for count, event in enumerate(read_events(inputs, ReadProgress()), 1):
        recorder.process(event)
        if store is not None:
            batch.append(event)
            if len(batch) >= store_batch:
                store.append_events(batch)
                batch = []
        if count % progress_every == 0:
            recorder.calls.append(("progress", count))
    recorder.finish()
    if store is not None:
        if batch:
            store.append_events(batch)
        store.upsert_alerts([])
        store.flush()
    recorder.calls.append(("progress", count))


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    for host, count in (("a", 37), ("b", 5), ("c", 61)):
        (tmp_path / host).mkdir()
        lines = [OSLO.format(minute=n * 7 % 60, sec=n % 60, ms=n % 3, host=host, n=n) for n in range(count)]
        (tmp_path / host / "nova-api.log").write_text("\n".join(sorted(lines)) + "\n")
    return tmp_path


@pytest.mark.parametrize("storing", [True, False])
@pytest.mark.parametrize(("progress_every", "store_batch"), [(5, 7), (1, 1), (1000, 1000), (13, 26)])
def test_calls_are_those_of_the_one_event_loop(archive: Path, monkeypatch: pytest.MonkeyPatch,
                                               storing: bool, progress_every: int, store_batch: int):
    monkeypatch.setattr(analyze_module, "STORE_BATCH", store_batch)
    inputs = discover([str(archive)])
    expected = Recorder()
    one_at_a_time(inputs, expected, expected if storing else None, progress_every, store_batch)

    got = Recorder()

    def on_progress(progress: ReadProgress) -> None:
        got.calls.append(("progress", sum(1 for call in got.calls if call[0] == "process")))

    result = analyze_module.analyze(inputs, engine=got, store=got if storing else None,
                                    on_progress=on_progress, progress_every=progress_every)
    assert got.calls == expected.calls
    assert result.stored == (103 if storing else 0)
    assert result.progress.stats.events == 103
