"""The analyzer's event-time reorder across collectors (cluster/reorder.py): the watermark, a
quiet collector, the checkpoint of held copies and the stable refs of stored records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stackwatch.cluster import reorder
from stackwatch.cluster.reorder import Copy, Reorder, StoredRefs, pack, unpack
from stackwatch.testing import make_event

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _copy(second: int, origin: str = "syslog:tcp/tcp0", ref: str = "") -> Copy:
    event = make_event(time=T0 + timedelta(seconds=second), message=f"at {second}", origin=origin,
                       ref=ref or f"{origin}:{second}")
    return Copy(event, ("rule-a",), True)


def _seconds(copies: list[Copy]) -> list[int]:
    return [int((c.event.time - T0).total_seconds()) for c in copies]


def test_copies_wait_until_every_sending_collector_is_past_them() -> None:
    buffer = Reorder()
    buffer.push("a", [_copy(10), _copy(20)], now=100.0)
    assert _seconds(buffer.release(now=100.0)) == [10, 20]  # one collector: its own order
    buffer.push("b", [_copy(5)], now=100.1)
    buffer.push("a", [_copy(30), _copy(40)], now=100.2)
    assert _seconds(buffer.release(now=100.2)) == [5]  # b is at 5: a's 30 and 40 wait
    buffer.push("b", [_copy(35), _copy(32)], now=100.3)
    assert _seconds(buffer.release(now=100.3)) == [30, 32, 35]  # oldest first, up to a's 40
    assert _seconds(buffer.held) == [40]


def test_whole_releases_and_partial_ones_alternate_without_releasing_early() -> None:
    """The whole held list goes without a per-copy pass once the watermark is past its newest
    copy; after a partial release (and after a checkpoint's restore) that newest bound still
    holds back what is newer than the watermark."""
    buffer = Reorder()
    buffer.push("a", [_copy(10), _copy(50)], now=100.0)
    buffer.push("b", [_copy(20)], now=100.0)
    assert _seconds(buffer.release(now=100.0)) == [10, 20]  # b at 20: a's 50 waits
    buffer.push("b", [_copy(40)], now=100.1)
    assert _seconds(buffer.release(now=100.1)) == [40]  # b at 40: 50 still waits
    buffer.push("b", [_copy(60)], now=100.2)
    assert _seconds(buffer.release(now=100.2)) == [50]  # a at 50 now holds 60
    restored = Reorder()
    restored.restore(buffer.held)
    restored.push("a", [_copy(59)], now=200.0)
    restored.push("b", [_copy(59)], now=200.0)
    assert _seconds(restored.release(now=200.0)) == [59, 59]  # both at 59: the restored 60 waits
    restored.push("a", [_copy(70)], now=200.1)
    restored.push("b", [_copy(70)], now=200.1)
    assert _seconds(restored.release(now=200.1)) == [60, 70, 70]  # everything: one pass
    assert restored.held == []


def test_an_idle_batchs_watermark_releases_at_once_what_waited_for_its_collector() -> None:
    """A collector with no records for this partition still says how far it got (an empty batch
    with its watermark, cluster/collector.py): the other collectors' copies go at once, not after
    ``QUIET``; a watermark never moves a clock back, and a batch's watermark past its copies
    counts as the collector's clock."""
    buffer = Reorder()
    buffer.push("a", [_copy(5)], now=100.0)
    buffer.push("b", [_copy(50)], now=100.0)
    assert _seconds(buffer.release(now=100.0)) == [5]
    buffer.push("a", [], now=100.1, watermark=(T0 + timedelta(seconds=49)).timestamp())
    assert buffer.release(now=100.1) == []  # a is at 49: b's 50 waits
    buffer.push("a", [], now=100.2, watermark=(T0 + timedelta(seconds=55)).timestamp())
    assert _seconds(buffer.release(now=100.2)) == [50]  # well before QUIET
    buffer.push("a", [], now=100.3, watermark=(T0 + timedelta(seconds=20)).timestamp())  # older: kept at 55
    buffer.push("b", [_copy(54), _copy(56)], now=100.3)
    assert _seconds(buffer.release(now=100.3)) == [54]
    buffer.push("a", [_copy(51)], now=100.4, watermark=(T0 + timedelta(seconds=60)).timestamp())
    assert _seconds(buffer.release(now=100.4)) == [51, 56]  # a's batch says it is at 60


def test_a_quiet_collector_stops_holding_the_others_back() -> None:
    buffer = Reorder()
    buffer.push("a", [_copy(5)], now=100.0)
    buffer.push("b", [_copy(50)], now=100.0)
    assert _seconds(buffer.release(now=100.0)) == [5]
    buffer.push("b", [_copy(60)], now=100.0 + reorder.QUIET / 2)
    assert buffer.release(now=100.0 + reorder.QUIET / 2) == []  # a is still live at 5
    assert _seconds(buffer.release(now=100.0 + reorder.QUIET + 0.01)) == [50, 60]  # a went quiet
    buffer.push("a", [_copy(70)], now=200.0)
    assert _seconds(buffer.release(everything=True)) == [70]


def test_a_collector_far_behind_holds_the_others_a_second_at_most() -> None:
    buffer = Reorder()
    buffer.push("backlog", [_copy(1)], now=100.0)  # reading old files: its clock is hours behind
    buffer.push("live", [_copy(9000)], now=100.0)
    assert _seconds(buffer.release(now=100.0)) == [1]
    buffer.push("backlog", [_copy(2)], now=100.5)
    buffer.push("live", [_copy(9001)], now=100.6)
    assert _seconds(buffer.release(now=100.6)) == [2]
    assert _seconds(buffer.release(now=101.01)) == [9000]  # held a second: released
    assert _seconds(buffer.release(now=101.7)) == [9001]


def test_held_copies_and_stored_refs_travel_in_the_checkpoint_exactly() -> None:
    odd = make_event(time=T0, message="bad \udcff byte", raw="raw \udcff\udcfe", origin="file:/var/log/x",
                     ref="/var/log/x@12.0:100")
    held = [Copy(odd, ("r1", "r2"), False), _copy(3)]
    refs = StoredRefs()
    assert refs.first_time(StoredRefs.key(odd) or "")
    engine_state, back, refs_back = unpack(pack(b"\x80\x05engine-pickle", held, refs))
    assert engine_state == b"\x80\x05engine-pickle"
    assert back[0].event.raw_bytes() == odd.raw_bytes() and back[0].rules == ("r1", "r2")
    assert back[0].dispatch is False and back[1] == held[1]
    assert not refs_back.first_time(StoredRefs.key(odd) or "")


def test_many_large_held_copies_fit_in_a_checkpoint() -> None:
    """The held copies were packed 20,000 to a wire batch whatever their size: 20,000 copies of
    1.4 KB events went over the wire's 16 MiB limit, the checkpoint could not be written and
    the partition retried its commit forever."""
    held = [Copy(make_event(time=T0, raw="x" * 1000, message="m" * 400, ref=f"r{n}"), ("r1",), True)
            for n in range(20_000)]
    engine_state, back, _ = unpack(pack(b"engine", held, StoredRefs()))
    assert engine_state == b"engine" and back == held


def test_a_checkpoint_of_the_engine_alone_still_loads() -> None:
    legacy = b"\x80\x05\x95 a pickle written before the reorder buffer"
    engine_state, held, refs = unpack(legacy)
    assert (engine_state, held, refs.dump()) == (legacy, [], [])


def test_only_stable_refs_identify_a_record_and_the_memory_is_bounded(monkeypatch) -> None:
    assert StoredRefs.key(_copy(1).event) is None  # a collector run's counter
    for origin in ("file:/var/log/auth.log", "relp:tcp/relp", "amqp:nova"):
        assert StoredRefs.key(_copy(1, origin=origin, ref="r").event) == origin + "\x1fr"
    monkeypatch.setattr(reorder, "MAX_STORED_REFS", 3)
    refs = StoredRefs()
    for ref in "abcd":
        assert refs.first_time(ref)
    assert refs.dump() == ["b", "c", "d"]
    assert not refs.first_time("d") and refs.first_time("a")
