"""CPU per event of each cluster role's stages, in one process, without the broker: the
benchmark's stream (``benchmarks.ingest``, host names spread as ``cluster_bench --hosts``) parsed
as the TCP source does, routed and encoded by a real ``Collector`` (its ``_route`` and
``_close_cut``, publishing captured), then decoded, detected and committed by real analyzer
``Partition`` objects (one embedded store folder each); beside it the single process's path over
the same events (``Engine.process`` and ``ingest.commit`` into one store). Each stage is timed
with ``time.process_time`` (no worker threads here), so the figures do not depend on what else
the machine runs as much as ``cluster_bench``'s do, and say where each role's CPU goes.

    python -m benchmarks.cluster_roles CORPUS_DIR [--lines 40000] [--partitions 8] [--hosts 200]

Prints one JSON object: µs per event (of the stream) per stage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.cluster_bench import spread_hosts
from benchmarks.ingest import RULE, build_stream

CUT = 2048  # events per cut: the collector's take per turn flat out (collector.TAKE_LIMIT)
TURN = 4  # batches an analyzer takes per turn
CHECKPOINT_EVERY = 32  # batches between two checkpoints (analyzer: PREFETCH // 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--lines", type=int, default=40_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--cut", type=int, default=CUT, help="events per collector cut")
    parser.add_argument("--turn", type=int, default=TURN, help="batches an analyzer commits per turn")
    parser.add_argument("--no-gc-tune", action="store_true", help="CPython's default GC thresholds")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sw-roles-"))
    try:
        print(json.dumps(run(args.corpus, args.lines, args.partitions, args.hosts, work,
                             gc_tune=not args.no_gc_tune, cut=args.cut, turn=args.turn), indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(corpus: Path, lines: int, partitions: int, hosts: int, work: Path, *, gc_tune: bool = True,
        cut: int = CUT, turn: int = TURN) -> dict[str, Any]:
    from stackwatch.cluster.analyzer import Partition
    from stackwatch.cluster.collector import Collector
    from stackwatch.cluster.wire import decode_batch, encode_batch
    from stackwatch.config.loader import load_config
    from stackwatch.pipeline import ingest
    from stackwatch.pipeline.engine import engine_for
    from stackwatch.sources.base import MessageDecoder, Record
    from stackwatch.store import open_store

    stream = work / "stream.log"
    build_stream(corpus, lines, 0, stream)
    if hosts:
        spread_hosts(stream, hosts)
    (work / "rules").mkdir()
    (work / "rules" / "bench.yaml").write_text(RULE)
    config = work / "config.yaml"
    config.write_text(f"hostname: roles\nstate_dir: {work / 'state'}\nstore: {{url: '{work / 'data'}'}}\n"
                      f"rules: {{builtin: true, paths: ['{work / 'rules'}']}}\n"
                      f"cluster: {{name: roles, partitions: {partitions}}}\n")
    settings = load_config(config)
    texts = stream.read_text(errors="surrogateescape").splitlines()
    out: dict[str, Any] = {"lines": len(texts), "partitions": partitions, "gc_tune": gc_tune, "cut": cut,
                           "turn": turn}
    per = 1e6 / len(texts)

    collector = Collector(settings, sources=[])
    published: dict[int, list[bytes]] = defaultdict(list)

    def publish(partition: int, builder: Any, watermark: float | None = None) -> None:
        collector._seq += 1
        mark = collector._clock if watermark is None else watermark
        batch = builder.build(collector=collector.member, seq=collector._seq, epoch=collector.epoch,
                              partition=partition, sent=time.time(), watermark=mark)
        collector._told[partition] = mark
        collector._cut_partitions.add(partition)
        published[partition].append(encode_batch(batch))

    collector._publish = publish  # type: ignore[method-assign]
    single_engine = engine_for(settings, live=False)
    partitions_ = [Partition(n, settings, "roles") for n in range(partitions)]
    for p in partitions_:
        p.open()
    single_store = open_store(str(work / "single"))
    if gc_tune:
        from stackwatch.detect.gc_tuning import tune_gc

        tune_gc()

    # the collector: parse (as the TCP source), then route + batch + encode per cut
    decoder = MessageDecoder("syslog:tcp")
    now = time.time()
    started = time.process_time()
    events = []
    for text in texts:
        events.extend(decoder.decode(Record(text, now, "127.0.0.1")))
    parsed = time.process_time()
    for start in range(0, len(events), cut):
        chunk = events[start:start + cut]
        collector._clock = max(collector._clock, max(e.time for e in chunk).timestamp())
        collector._route(None, chunk)
        collector._close_cut()
    routed = time.process_time()
    out["collector_us"] = {"parse": round((parsed - started) * per, 1), "route_batch_encode":
                           round((routed - parsed) * per, 1)}
    out["copies_per_event"] = round(collector.stats.copies / len(events), 3)
    out["batches"] = sum(len(v) for v in published.values())

    # the analyzer: decode, reorder + detect, commit (checkpoint every CHECKPOINT_EVERY batches)
    decode = detect = commit = checkpoint = 0.0
    analyzer_alerts = 0
    for p in partitions_:
        bodies = published[p.number]
        taken = 0
        for start in range(0, len(bodies), turn):
            t0 = time.process_time()
            batches = [decode_batch(b) for b in bodies[start:start + turn]]
            t1 = time.process_time()
            home, _ = p.run_batches(batches)
            t2 = time.process_time()
            taken += len(batches)
            due = taken >= CHECKPOINT_EVERY or start + turn >= len(bodies)
            if due:
                taken = 0
                p.detect(p.reorder.release(everything=True))  # as at the run's end: nothing held back
            before = p.checkpoint_cpu
            analyzer_alerts += len(p.commit(home, due)[0])
            t3 = time.process_time()
            decode, detect, commit = decode + t1 - t0, detect + t2 - t1, commit + t3 - t2
            checkpoint += p.checkpoint_cpu - before
    out["analyzer_us"] = {"decode": round(decode * per, 1), "reorder_detect": round(detect * per, 1),
                          "store_commit": round((commit - checkpoint) * per, 1),
                          "checkpoint": round(checkpoint * per, 1)}
    out["analyzer_alert_changes"] = analyzer_alerts

    # the single process over the same events: detect, then commit per CUT events
    changes = ingest.AlertChanges()
    t0 = time.process_time()
    spent_detect = 0.0
    single_alerts = 0
    for start in range(0, len(events), CUT):
        chunk = events[start:start + CUT]
        d0 = time.process_time()
        for event in chunk:
            found = single_engine.process(event)
            if found:
                changes.add(found, [single_engine.created(alert) for alert in found])
                single_alerts += len(found)
        spent_detect += time.process_time() - d0
        ingest.commit(single_store, chunk, [c.snapshot for c in changes.take()])
    t1 = time.process_time()
    out["single_alert_changes"] = single_alerts
    out["single_us"] = {"parse": out["collector_us"]["parse"], "detect": round(spent_detect * per, 1),
                        "store_commit": round((t1 - t0 - spent_detect) * per, 1)}
    out["totals_us"] = {
        "collector": round(sum(out["collector_us"].values()), 1),
        "analyzer": round(sum(out["analyzer_us"].values()), 1),
        "single": round(sum(out["single_us"].values()), 1),
    }
    for p in partitions_:
        p.close()
    single_store.close()
    return out


if __name__ == "__main__":
    main()
