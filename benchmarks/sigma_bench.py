"""Sigma over auditd: stackwatch's compiled predicates vs the Zircolite approach, same run.

Both sides get the same parsed events (the auditd records of the corpus) and the same
SigmaHQ Linux rules (tests/detect/sigma_rules/*.yml):

* **stackwatch**: the rules compiled by ``stackwatch.detect.sigma.load_sigma_file`` run in a
  detection ``Engine`` (rules indexed by action/service/kind), event by event;
* **Zircolite-style**: pySigma-backend-sqlite turns each rule into SQL; the events are loaded
  into an in-memory SQLite table (``TEXT COLLATE NOCASE`` columns, Python ``REGEXP``), and
  every query runs over it. Loading is included in its time, as a retro-hunt tool pays it.

The processing pipeline (logsource -> column conditions, field mapping) and the row mapping
are the ones tests/detect/test_sigma.py cross-checks hit for hit against our predicates;
the hit counts of both sides are reported so a reader can see they agree.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stackwatch.core.event import Event
from stackwatch.detect.sigma_sql import backend, count_hits, load_table

RULES_DIR = Path(__file__).resolve().parent.parent / "tests" / "detect" / "sigma_rules"
def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def sql_queries() -> list[str]:
    from sigma.collection import SigmaCollection

    sql = backend()
    queries: list[str] = []
    for path in rule_files():
        for rule in SigmaCollection.from_yaml(path.read_text()).rules:
            queries.extend(sql.convert_rule(rule))
    return queries


def sqlite_pass(events: list[Event], queries: list[str]) -> int:
    """Load ``events`` into a fresh in-memory table and run every query; total hits."""
    conn = load_table(events)
    hits = sum(count_hits(conn, query) for query in queries)
    conn.close()
    return hits


def load_rules() -> list[Any]:
    from stackwatch.detect.sigma import load_sigma_file

    return [rule for path in rule_files() for rule in load_sigma_file(path)]


def engine_pass(events: list[Event], rules: list[Any]) -> int:
    """Every event through a fresh Engine holding the Sigma rules; alerts raised."""
    from stackwatch.detect.engine import Engine

    engine = Engine(rules, correlate=False)
    process = engine.process
    for event in events:
        process(event)
    engine.finish()
    return len(engine.alerts())


def predicate_hits(events: list[Event], rules: list[Any]) -> int:
    """Events each rule's condition accepts, summed (comparable to the SQL hit counts)."""
    return sum(1 for rule in rules for event in events if rule.condition(event))


def run(events: list[Event], min_events: int = 200_000) -> dict[str, Any]:
    """Time both approaches over ``events`` (repeated until ``min_events`` went through)."""
    rounds = max(1, -(-min_events // max(len(events), 1)))
    started = time.perf_counter()
    rules = load_rules()
    compile_ours = time.perf_counter() - started
    started = time.perf_counter()
    queries = sql_queries()
    compile_sql = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        alerts = engine_pass(events, rules)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        sql_hits = sqlite_pass(events, queries)
    sql = time.perf_counter() - started
    ours_hits = predicate_hits(events, rules)
    total = rounds * len(events)
    return {
        "events": len(events), "rounds": rounds, "rules": len(rules), "queries": len(queries),
        "stackwatch": {"seconds": round(ours, 4), "events_per_s": round(total / ours) if ours else None,
                       "compile_seconds": round(compile_ours, 4), "hits": ours_hits, "alerts": alerts},
        "sqlite": {"seconds": round(sql, 4), "events_per_s": round(total / sql) if sql else None,
                   "compile_seconds": round(compile_sql, 4), "hits": sql_hits},
        "hits_equal": ours_hits == sql_hits,
        "ratio": round(sql / ours, 2) if ours else None,
    }
