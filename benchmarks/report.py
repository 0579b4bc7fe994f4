"""The markdown report of one benchmark run (``results.md``; README's Performance section)."""

from __future__ import annotations

from typing import Any


def _rate(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int | float) else "–"


def _ratio(value: float | None, base: float | None, digits: int = 3) -> str:
    return f"{value / base:.{digits}f}" if value and base else "–"


def pipeline_table(results: list[dict[str, Any]]) -> list[str]:
    rows = ["### Pipeline over the mixed corpus", "",
            "| lines | stage | lines/s | lines per CPU-s | × read loop | 1/x of read loop | × grep -c "
            "| peak RSS MB | seconds |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for size_result in results:
        base = size_result["baselines"]
        py_rate = base["python_read"]["lines_per_s"]
        grep_rate = base["grep"]["lines_per_s"]
        for name, fig in [*base.items(), *size_result["stages"].items()]:
            rate = fig["lines_per_s"] or 0
            inverse = f"{py_rate / rate:.1f}" if rate else "–"
            rows.append(f"| {size_result['lines']:,} | {name} | {_rate(rate)} "
                        f"| {_rate(fig.get('lines_per_cpu_s'))} "
                        f"| {_ratio(rate, py_rate)} | {inverse} | {_ratio(rate, grep_rate, 4)} "
                        f"| {fig['peak_rss_mb']} | {fig['seconds']} |")
    paths = {fig.get("hot_paths") for result in results for name, fig in result["stages"].items()
             if name.endswith("_pure")}
    default = {fig.get("hot_paths") for result in results for name, fig in result["stages"].items()
               if not name.endswith("_pure")}
    if paths:
        rows += ["", f"Hot modules: {', '.join(sorted(p for p in default if p))} (stages ending `_pure`: "
                 f"{', '.join(sorted(p for p in paths if p))}; see src/stackwatch/accel.py)."]
    return rows


TARGET_LINES_PER_S = 150_000  # the pipeline target: parse+detect+chain+store
_FLOOR_LABELS = {
    "floor_event": "reader + one Event per line + time-ordered merge (no parsing)",
    "floor_wide_row": "the above + the store's chained 25-column row per line, in SQLite",
    "floor_meta_row": "the above, but raw lines in a segment file + chain + 4-column row",
}


def floors_table(results: list[dict[str, Any]]) -> list[str]:
    """The fixed per-line costs (benchmarks.floors) against the 150k lines/s budget."""
    measured = [r for r in results if r.get("floors")]
    if not measured:
        return []
    budget = 1e6 / TARGET_LINES_PER_S
    rows = ["", f"### Floors: fixed per-line costs, no parsing or detection "
            f"(budget at {TARGET_LINES_PER_S:,} lines/s: {budget:.2f} µs a line)", "",
            "| lines | floor | lines/s | µs a line | 1/x of read loop | µs left for parse+detect |",
            "|---:|---|---:|---:|---:|---:|"]
    for result in measured:
        py_rate = result["baselines"]["python_read"]["lines_per_s"]
        for name, fig in result["floors"].items():
            rate = fig["lines_per_s"] or 0
            micros = 1e6 / rate if rate else None
            rows.append(f"| {result['lines']:,} | {_FLOOR_LABELS.get(name, name)} | {_rate(rate)} "
                        f"| {f'{micros:.2f}' if micros else '–'} "
                        f"| {f'{py_rate / rate:.1f}' if rate else '–'} "
                        f"| {f'{budget - micros:.2f}' if micros else '–'} |")
    return rows


def chain_table(results: list[dict[str, Any]]) -> list[str]:
    ratios = [(r["lines"], r["chain_ratio"]) for r in results if r.get("chain_ratio")]
    if not ratios:
        return []
    rows = ["", "### Cost of the tamper-evident chain "
            "(parse_detect_store over parse_detect_store_nochain)", "",
            "| lines | chain on/off, lines/s | chain on/off, lines per CPU-s |", "|---:|---:|---:|"]
    for lines, ratio in ratios:
        rows.append(f"| {lines:,} | {ratio.get('lines_per_s', '–')} | {ratio.get('lines_per_cpu_s', '–')} |")
    return rows


def growth_table(growth: dict[str, Any]) -> list[str]:
    if not growth:
        return []
    rows = ["", "### Growth with input size", "",
            "| stage | from → to lines | time ratio (size ratio) | peak RSS MB |", "|---|---|---:|---:|"]
    for name, steps in growth.items():
        for step in steps:
            rows.append(f"| {name} | {step['from']:,} → {step['to']:,} | {step['time_ratio']} "
                        f"({step['size_ratio']:g}) | {step['rss_from_mb']} → {step['rss_to_mb']} |")
    return rows


def keys_table(keys: list[dict[str, Any]]) -> list[str]:
    if not keys:
        return []
    rows = ["", "### Detection state: distinct source addresses (built-in keystone rules, one window)", "",
            "| distinct IPs | events | detect events/s | seconds | keys held (all rules) | peak RSS MB |",
            "|---:|---:|---:|---:|---:|---:|"]
    for fig in keys:
        rows.append(f"| {fig['ips']:,} | {fig['lines']:,} | {_rate(fig['detect_events_per_s'])} | "
                    f"{fig['detect_seconds']} | {fig['keys_held']:,} | {fig['peak_rss_mb']} |")
    return rows


def cadf_table(cadf: dict[str, Any]) -> list[str]:
    if not cadf:
        return []
    base = cadf["cadf_orjson"]["lines_per_s"]
    rows = ["", f"### Keystone CADF notifications ({cadf['cadf_orjson']['lines']:,} envelopes)", "",
            "| stage | events/s | × orjson decode alone | peak RSS MB |", "|---|---:|---:|---:|"]
    labels = {"cadf_orjson": "orjson alone (baseline: both decodes)", "cadf_parse": "parse",
              "cadf_e2e": "parse+detect", "cadf_store": "parse+detect+store"}
    for name, fig in cadf.items():
        rows.append(f"| {labels.get(name, name)} | {_rate(fig['lines_per_s'])} | "
                    f"{_ratio(fig['lines_per_s'], base)} | {fig['peak_rss_mb']} |")
    return rows


def sigma_table(sigma: dict[str, Any]) -> list[str]:
    if not sigma:
        return []
    ours, sql = sigma["stackwatch"], sigma["sqlite"]
    return ["", f"### Sigma over auditd ({sigma['rules']} SigmaHQ Linux rules, "
            f"{sigma['events']:,} auditd events of the {sigma['corpus_lines']:,}-line corpus, "
            f"× {sigma['rounds']})", "",
            "| approach | events/s | hits | rule compile s |", "|---|---:|---:|---:|",
            f"| stackwatch compiled predicates in the Engine | {_rate(ours['events_per_s'])} "
            f"| {ours['hits']} | {ours['compile_seconds']} |",
            f"| Zircolite-style: pySigma-backend-sqlite, in-memory SQLite, load included | "
            f"{_rate(sql['events_per_s'])} | {sql['hits']} | {sql['compile_seconds']} |",
            "", f"stackwatch / SQLite: **{sigma['ratio']}×**; hit counts equal: {sigma['hits_equal']}."]


def to_markdown(report: dict[str, Any]) -> str:
    lines = [f"Machine: {report['machine']}. Run {report['time']} UTC, profile `{report['profile']}`, "
             f"seed {report['seed']}, {report.get('wall_seconds', '?')} s in all. Rates are on one core "
             "(one process per stage); every ratio is against a baseline measured in the same run, "
             f"over the same input. Each stage is the fastest of {report.get('repeat', 1)} run(s), "
             "each baseline the fastest of 5.", ""]
    lines += pipeline_table(report.get("results", []))
    lines += floors_table(report.get("results", []))
    lines += chain_table(report.get("results", []))
    lines += growth_table(report.get("growth", {}))
    lines += keys_table(report.get("keys", []))
    lines += cadf_table(report.get("cadf", {}))
    lines += sigma_table(report.get("sigma", {}))
    if "ingest" in report:
        lines += ["", f"TCP syslog ingest vs rsyslog: {report['ingest']['status']}."]
    return "\n".join(lines) + "\n"
