"""`python -m bench`: run every benchmark, print one table, write bench/results/latest.json.

Exits 1 when a target is missed (or a benchmark fails). BENCH_REPS / BENCH_WARMUP change the
number of measured / discarded repetitions (defaults 5 and 1).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.common import REPO, REPS, WARMUP, alternate, median, pair_ratio, run_worker

RESULTS = os.path.join(REPO, "bench", "results", "latest.json")
MiB = 1024 * 1024


def row(benchmark: str, ours: float, peer: str, peer_value: float, ratio: float,
        target: str | None, met: bool | None, unit: str = "s") -> dict[str, Any]:
    return {"benchmark": benchmark, "ours": ours, "peer": peer, "peer_value": peer_value,
            "ratio": ratio, "target": target, "met": met, "unit": unit}


def pipeline_rows(work: str, raw: dict) -> list[dict]:
    """Benchmark 1: ratios of ours against plain dlt and dagster-dlt per data shape."""
    rows = []
    cases = ((1_000_000, "arrow", "1M rows arrow"), (200_000, "dicts", "200k rows dicts"))
    result = run_worker("pipeline_overhead", work, *(f"{size}:{kind}" for size, kind, _ in cases))
    for size, kind, label in cases:
        t = raw[f"pipeline_{kind}"] = result[f"{size}:{kind}"]
        vs_plain = pair_ratio(t["ours"], t["plain_dlt"])
        vs_peer = pair_ratio(t["ours"], t["dagster_dlt"])
        rows.append(row(f"1 pipeline asset, {label}", median(t["ours"]), "plain dlt",
                        median(t["plain_dlt"]), vs_plain, "<= 1.10", vs_plain <= 1.10))
        rows.append(row(f"1 pipeline asset, {label}", median(t["ours"]), "dagster-dlt",
                        median(t["dagster_dlt"]), vs_peer, "< 1.00", vs_peer < 1.0))
    return rows


def defs_rows(work: str, raw: dict) -> list[dict]:
    """Benchmark 2: definitions load per size; the target at 500 and the growth check."""
    from bench.defs_load import run

    result = run(work)
    raw["defs_load"] = result
    rows = []
    for n, r in result.items():
        at_500 = n == 500
        rows.append(row(f"2 definitions load, {n} pipelines", r["ours_median_s"], "dagster-dlt",
                        r["dagster_dlt_median_s"], r["ratio"], "<= 0.25" if at_500 else None,
                        r["ratio"] <= 0.25 if at_500 else None))
    for n in result:
        rows.append(row(f"2 definitions load, {n} pipelines, cold cache (1 run)",
                        result[n]["ours_cold_s"], "", float("nan"), float("nan"), None, None))
    for n in result:
        rows.append(row(f"2 definitions build in-process, {n} pipelines (imports excluded)",
                        result[n]["ours_build_median_s"], "", float("nan"), float("nan"), None,
                        None))
    # growth: in-process build time (imports excluded) at 500 vs 100 pipelines. Linear cost
    # plus a fixed part gives < 5, a quadratic one ~25. (b500-b1)/(b100-b1) is shown too, but
    # b1 is mostly one-off work (first source import) and too noisy to gate on.
    b = {n: r["ours_build_median_s"] for n, r in result.items()}
    growth = b[500] / b[100]
    rows.append(row("2 definitions build growth b500/b100 (linear < 5)", growth, "",
                    float("nan"), growth, "<= 5.5", growth <= 5.5, unit="x"))
    marginal = (b[500] - b[1]) / max(b[100] - b[1], 1e-3)
    rows.append(row("2 definitions build growth (b500-b1)/(b100-b1) (linear 5.04)", marginal,
                    "", float("nan"), marginal, None, None, unit="x"))
    return rows


def io_rows(work: str, raw: dict) -> list[dict]:
    """Benchmark 3: IO manager round trip and read."""
    t = run_worker("io_roundtrip", work, "1000000")
    raw["io_manager"] = t
    rt, rd = t["roundtrip"], t["read"]
    r_rt = pair_ratio(rt["ours"], rt["dagster_duckdb"])
    r_rd = pair_ratio(rd["ours"], rd["raw_duckdb"])
    return [
        row("3 IO manager 1M-row DataFrame, write+read", median(rt["ours"]),
            "DuckDBPandasIOManager", median(rt["dagster_duckdb"]), r_rt, "<= 1.30", r_rt <= 1.3),
        row("3 IO manager 1M-row DataFrame, write+read", median(rt["ours"]),
            "raw DuckDB (no Dagster)", median(rt["raw_duckdb"]),
            pair_ratio(rt["ours"], rt["raw_duckdb"]), None, None),
        row("3 IO manager 1M-row DataFrame, read", median(rd["ours"]), "raw DuckDB",
            median(rd["raw_duckdb"]), r_rd, "<= 1.20", r_rd <= 1.2),
        row("3 IO manager 1M-row DataFrame, read", median(rd["ours"]), "DuckDBPandasIOManager",
            median(rd["dagster_duckdb"]), pair_ratio(rd["ours"], rd["dagster_duckdb"]), None,
            None),
    ]


def memory_rows(work: str, raw: dict) -> list[dict]:
    """Benchmark 4: peak RSS streaming 50 frames vs 1 frame (fresh processes, no warm-up)."""
    def peak(frames: int) -> Callable[[], float]:
        def measure() -> float:
            r = run_worker("memory", work, str(frames))
            raw.setdefault("memory", []).append(r)
            return r["peak_rss"] / MiB
        return measure

    t = alternate({"50": peak(50), "1": peak(1)}, warmup=0)
    ratio = pair_ratio(t["50"], t["1"])
    return [row("4 save() peak RSS, 50 x 100k-row frames", median(t["50"]),
                "one 100k-row frame", median(t["1"]), ratio, "<= 2.00", ratio <= 2.0, "MiB")]


def catalog_rows(work: str, raw: dict) -> list[dict]:
    """Benchmark 5: row_counts() on 200 tables; current.project() vs definitions load at 500."""
    from bench.catalog import project_vs_defs

    t = run_worker("catalog", work)
    raw["catalog_row_counts"] = t
    r = pair_ratio(t["ours"], t["plain_dlt"])
    p = project_vs_defs(work)
    raw["project_vs_defs"] = p
    rp = pair_ratio(p["project"], p["defs_load"])
    return [
        row("5 catalog row_counts(), 200 tables", median(t["ours"]),
            "dlt.dataset().row_counts()", median(t["plain_dlt"]), r, "<= 1.25", r <= 1.25),
        row("5 first current.project(), 500 pipelines (process)", median(p["project"]),
            "our definitions load, 500", median(p["defs_load"]), rp, "< 1.00", rp < 1.0),
    ]


def partition_rows(work: str, raw: dict) -> list[dict]:
    """Benchmark 6: a 30-partition single-run backfill vs one unpartitioned run and dagster-dlt;
    4 partitions started at once."""
    from bench.partitions import partition_rows as rows_of

    return rows_of(run_worker("partitions", work, "1000000"), raw, row)


SECTIONS: list[tuple[str, Callable[[str, dict], list[dict]]]] = [
    ("pipeline asset overhead", pipeline_rows),
    ("definitions load", defs_rows),
    ("IO manager", io_rows),
    ("streaming memory", memory_rows),
    ("catalog access", catalog_rows),
    ("partition backfill", partition_rows),
]


def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return ""
    return f"{value:.0f} MiB" if unit == "MiB" else f"{value:.2f}{'x' if unit == 'x' else ' s'}"


def table(rows: list[dict]) -> str:
    head = ["benchmark", "ours", "vs", "peer", "ratio", "target", "met"]
    body = [
        [r["benchmark"], fmt(r["ours"], r["unit"]), r["peer"], fmt(r["peer_value"], r["unit"]),
         "" if math.isnan(r["ratio"]) else f"{r['ratio']:.2f}", r["target"] or "",
         {True: "yes", False: "NO", None: ""}[r["met"]]]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(b, widths)) + " |" for b in body]
    return "\n".join(lines)


def main() -> int:
    only = set(sys.argv[1:])
    work = tempfile.mkdtemp(prefix="dltplus_bench_")
    started = time.time()
    rows: list[dict] = []
    raw: dict = {}
    errors: dict[str, str] = {}
    try:
        for name, fn in SECTIONS:
            if only and not any(o in name for o in only):
                continue
            t0 = time.time()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            try:
                rows.extend(fn(work, raw))
            except Exception:  # noqa: BLE001  (report it, run the other benchmarks)
                errors[name] = traceback.format_exc()
                print(errors[name], file=sys.stderr)
            print(f"[bench] {name}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = "ratio = median of per-repetition ratios ours/peer (pairs run back to back)"
    print(f"\nmedians of {REPS} repetitions after {WARMUP} warm-up; {ratios}\n")
    print(table(rows))
    missed = [r["benchmark"] + " vs " + r["peer"] for r in rows if r["met"] is False]
    print(f"\n{len(missed)} target(s) missed" + (": " + "; ".join(missed) if missed else "")
          + (f"; {len(errors)} benchmark(s) failed: {', '.join(errors)}" if errors else ""))
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump({
            "started_utc": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
            "seconds": round(time.time() - started, 1),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "warmup": WARMUP, "repetitions": REPS,
            "rows": rows, "missed": missed, "errors": errors, "raw": raw,
        }, f, indent=1, default=str)
    print(f"wrote {os.path.relpath(RESULTS, REPO)} in {time.time() - started:.0f} s")
    return 1 if missed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
