"""``analyze --jobs N`` over the mixed corpus: wall-clock speed-up of 2 workers over 1, and
the CPU each side spends, so the speed-up for any number of cores follows from a model
measured in the same run rather than from one noisy wall-clock ratio.

Stages (each in its own process, benchmarks.stage): ``parse`` (read + parse alone),
``detect_jobs1/2`` (no store) and ``analyze_jobs1/2`` (with the store). From their CPU times,
per line:

* R: read + parse (``parse``), what the workers take off the parent;
* D: merge + detection (``detect_jobs1`` - R); S: the store (``analyze_jobs1`` - ``detect_jobs1``);
* E: what the workers add to R (pickling the events): ``workers`` - R;
* X: what the parent adds (unpickling them and building the events again): ``detect_jobs2``'s
  parent - D (measured without the store, so the store's share does not blur it);
* P: the parent of ``analyze_jobs2`` as measured (X + D + the store's work left in it);
* I: the search indexer's process (``analyze --jobs N`` fills the index from a process of its
  own, store/index_process.py; 0 where there is none).

Model, N workers on C cores: the parent is one process doing P a line, the indexer one doing
I, the workers share R + E, and everything shares the cores::

    time(N) = lines * max(P, (R + E) / N, I, (P + I + R + E) / C)
"""

from __future__ import annotations

from typing import Any

STAGES = ("parse", "detect_jobs1", "detect_jobs2", "analyze_jobs1", "analyze_jobs2")


def model(stages: dict[str, Any], cores: tuple[int, ...] = (2, 4, 8, 16)) -> dict[str, Any]:
    """Per-line costs (µs of CPU) and the speed-ups they predict for ``cores`` cores."""
    lines = stages["parse"]["lines"]

    def us(seconds: float) -> float:
        return seconds / lines * 1e6

    read = us(stages["parse"]["cpu_seconds"])
    detect = us(stages["detect_jobs1"]["cpu_seconds"]) - read
    store = us(stages["analyze_jobs1"]["cpu_seconds"] - stages["detect_jobs1"]["cpu_seconds"])
    two = stages["analyze_jobs2"]
    encode = us(two["workers_cpu_seconds"]) - read
    decode = us(stages["detect_jobs2"]["cpu_seconds"]) - detect
    parent = us(two["cpu_seconds"])
    indexer = us(two.get("indexer_cpu_seconds", 0.0))
    costs = {"read_parse": read, "detect": detect, "store": store, "encode": encode, "decode": decode,
             "parent": parent, "store_in_parent": parent - decode - detect, "indexer": indexer}
    one = read + detect + store
    workers = read + encode
    predicted = {str(count): round(one / max(parent, workers / count, indexer,
                                             (parent + indexer + workers) / count), 2)
                 for count in cores}
    no_store = {str(count): round((read + detect) / max(decode + detect, workers / count,
                                                   (decode + detect + workers) / count), 2)
                for count in cores}
    return {"us_per_line": {k: round(v, 2) for k, v in costs.items()}, "speedup_store": predicted,
            "speedup_no_store": no_store, "parent_bound_store": round(one / max(parent, indexer), 2),
            "parent_bound_no_store": round((read + detect) / (decode + detect), 2)}


def summary(stages: dict[str, Any]) -> dict[str, Any]:
    """The measured wall-clock ratios and the model."""
    out: dict[str, Any] = {"stages": stages, "model": model(stages)}
    for name in ("detect", "analyze"):
        one, two = stages[f"{name}_jobs1"], stages[f"{name}_jobs2"]
        out[f"{name}_wall_ratio"] = round(one["seconds"] / two["seconds"], 3) if two["seconds"] else None
    return out


def markdown(report: dict[str, Any]) -> list[str]:
    if not report or "model" not in report:
        return []
    stages, fitted = report["stages"], report["model"]
    rows = ["", f"### analyze --jobs N ({stages['parse']['lines']:,} lines of the mixed corpus)", "",
            "| stage | seconds | parent CPU-s | workers CPU-s | indexer CPU-s | lines/s |",
            "|---|---:|---:|---:|---:|---:|"]
    for name in ("detect_jobs1", "detect_jobs2", "analyze_jobs1", "analyze_jobs2"):
        stage = stages[name]
        rows.append(f"| {name} | {stage['seconds']} | {stage['cpu_seconds']} | "
                    f"{stage.get('workers_cpu_seconds', 0)} | {stage.get('indexer_cpu_seconds', 0)} | "
                    f"{stage['lines_per_s']:,} |")
    costs = fitted["us_per_line"]
    rows += ["", f"Wall-clock ratio --jobs 2 / --jobs 1: {report['analyze_wall_ratio']} with the store, "
                 f"{report['detect_wall_ratio']} without it.", "",
             "CPU µs a line: " + ", ".join(f"{name} {value}" for name, value in costs.items()) + ".", "",
             "| cores | predicted speed-up, with the store | without the store |", "|---:|---:|---:|"]
    for cores, value in fitted["speedup_store"].items():
        rows.append(f"| {cores} | {value} | {fitted['speedup_no_store'][cores]} |")
    rows += ["", f"Bound (the parent alone, any number of cores): {fitted['parent_bound_store']}x with the "
                 f"store, {fitted['parent_bound_no_store']}x without it."]
    return rows
