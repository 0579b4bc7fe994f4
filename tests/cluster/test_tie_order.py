"""Records of the same second from two hosts reach a sequence rule in one order in ``analyze``
and in a cluster partition (pipeline/ties.py): time, then host, whatever order the files are
named in or the collectors' batches arrive in.

Two keystone controllers behind one load balancer write Apache access lines with whole
seconds: four failed logins from one address on one controller, then in one second a fifth
failure there and the success on the other. Whether the rule "5 failures then a success"
fires depends on which of the two same-second lines comes first; analyze (a real process over
the files) and a partition fed by two collectors, the later host's batch arriving first, must
agree, and the two placements of the success must give different answers (the rule is
really decided by the tie)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stackwatch.cluster.analyzer import Partition
from stackwatch.cluster.wire import Batch, BatchBuilder, decode_batch, encode_batch
from stackwatch.config.settings import Settings, StoreSettings
from stackwatch.pipeline.engine import engine_for
from stackwatch.pipeline.reader import discover, read_event_batches
from stackwatch.respond.orphans import RULE_ID as ORPHANS
from stackwatch.store import open_store
from tests.producers.hosttools import analyze

CATEGORY = "auth.success_after_failures"
IP = "10.149.54.84"


def _line(second: int, status: int) -> str:
    return (f'{IP} - - [30/Sep/2025:01:50:{second:02d} +0000] "POST /v3/auth/tokens HTTP/1.1" {status} 114 '
            '"-" "openstacksdk/0.61.0 keystoneauth1/4.4.0 python-requests/2.25.1 CPython/3.10.12"\n')


def _logs(root: Path, failing: str, succeeding: str) -> Path:
    for host, text in ((failing, "".join(_line(s, 401) for s in (0, 1, 2, 3, 10))),
                       (succeeding, _line(10, 201))):
        (root / host).mkdir(parents=True)
        (root / host / "keystone_access.log").write_text(text)
    return root


def _in_partition(tmp_path: Path, root: Path) -> set[tuple[str, str]]:
    """The logs through one partition: a collector per host, ctl2's batch arriving first."""
    settings = Settings(store=StoreSettings(url=str(tmp_path / "data")), state_dir=str(tmp_path / "state"))
    rules = (*(r.id for r in engine_for(settings, live=False).rules), ORPHANS)
    events = [e for batch in read_event_batches(discover([str(root)])) for e in batch]
    batches: list[Batch] = []
    for host in ("ctl2", "ctl1"):
        builder = BatchBuilder()
        for event in events:
            if event.host == host:
                builder.add(event, rules, True)
        built = builder.build(collector=f"c-{host}", seq=1, epoch="e1", bucket=0, sent=time.time())
        batches.append(decode_batch(encode_batch(built)))
    partition = Partition(0, settings, "a")
    partition.open()
    home, _ = partition.run_batches(batches)
    partition.commit(home, True)
    partition.finish()
    partition.commit([], True)
    partition.close()
    with open_store(tmp_path / "data" / "p000", read_only=True) as store:
        return {(s.alert.category, s.alert.key) for s in store.alerts() if s.alert.category == CATEGORY}


@pytest.mark.parametrize(("failing", "succeeding", "fires"),
                         [("ctl2", "ctl1", False), ("ctl1", "ctl2", True)])
def test_same_second_records_of_two_hosts_decide_a_sequence_alike_in_analyze_and_a_partition(
        tmp_path: Path, failing: str, succeeding: str, fires: bool) -> None:
    root = _logs(tmp_path / "logs", failing, succeeding)
    by_analyze = {(a["category"], a["key"]) for a in analyze(root, tmp_path / "analyzed").of(CATEGORY)}
    assert bool(by_analyze) is fires  # ctl1's line of the tied second first
    assert _in_partition(tmp_path / "cluster", root) == by_analyze
