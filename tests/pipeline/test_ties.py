"""``in_tie_order`` (pipeline/ties.py): analyze's batches with each run of equal times in host
order, each host's records in their own order (whatever their service), a run split across two
batches ordered as one, and records of different times never moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stackwatch.core.event import Event
from stackwatch.pipeline.ties import in_tie_order
from stackwatch.testing import make_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _e(second: int, host: str, n: int, service: str = "keystone") -> Event:
    return make_event(time=T0 + timedelta(seconds=second), host=host, service=service, message=f"{host}-{n}")


def _names(batches: list[list[Event]]) -> list[str]:
    return [e.message for batch in batches for e in batch]


def test_ties_go_by_host_each_host_in_its_own_order_across_batches() -> None:
    batches = [
        [_e(1, "ctl2", 1), _e(2, "ctl2", 2), _e(2, "ctl1", 1), _e(3, "ctl2", 3)],
        [_e(3, "ctl1", 2), _e(3, "ctl2", 4), _e(3, "ctl1", 3, "nova"), _e(3, "ctl1", 4), _e(4, "ctl2", 5)],
    ]
    out = list(in_tie_order(batches))
    # ctl1's nova record stays between its keystone records: one host's order is the order written
    assert _names(out) == ["ctl2-1", "ctl1-1", "ctl2-2", "ctl1-2", "ctl1-3", "ctl1-4", "ctl2-3", "ctl2-4",
                           "ctl2-5"]
    assert [len(b) for b in out] == [3, 5, 1]  # the run of second 3 waited for the next batch


def test_a_batch_that_goes_back_in_time_is_left_as_it_is() -> None:
    batch = [_e(5, "ctl2", 1), _e(5, "ctl1", 1), _e(4, "ctl1", 2)]
    assert _names(list(in_tie_order([batch]))) == ["ctl2-1", "ctl1-1", "ctl1-2"]
    assert list(in_tie_order([[], []])) == []


def test_a_long_run_of_one_time_is_not_held_whole() -> None:
    """Records that all carry one time (unparsed lines stamped with their receive time) pass on
    batch by batch once the run held is over its bound, not all at the end."""
    big = "x" * (600 << 10)
    batches = [[make_event(time=T0, host="h", raw=big, message=str(n))] for n in range(4)]
    sizes = []
    for batch in in_tie_order(batches):
        sizes.append(len(batch))
    assert sum(sizes) == 4 and max(sizes) <= 2
