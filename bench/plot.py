"""The picture of a benchmark run: one horizontal bar per comparison, written next to the JSON.

Each bar is a row's ratio ours/peer (the median of the per-repetition pair ratios), the
whisker its min-max over the repetitions, and the short vertical line its target. Rows
without a peer (absolute times, growth factors) are not comparisons and are left out.
matplotlib is imported here only (the `bench` extra); the package never imports it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

_TARGET = re.compile(r"[<>]=?\s*([0-9.]+)")


def target_value(target: str | None) -> float | None:
    """`<= 1.10` -> 1.1; None when the row has no target."""
    found = _TARGET.search(target or "")
    return float(found.group(1)) if found else None


def comparisons(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the picture shows: a peer and a ratio."""
    return [r for r in rows if r.get("peer") and not math.isnan(r.get("ratio", math.nan))]


def write_picture(rows: Sequence[dict[str, Any]], path: str, title: str = "") -> bool:
    """Write the bar chart of `rows` to `path` (PNG); False when there is nothing to draw."""
    shown = comparisons(rows)
    if not shown:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    labels = [f"{r['benchmark']}\nvs {r['peer']}" for r in shown]
    ratios = [float(r["ratio"]) for r in shown]
    lows = [min(r.get("ratios") or [r["ratio"]]) for r in shown]
    highs = [max(r.get("ratios") or [r["ratio"]]) for r in shown]
    colors = [
        {True: "#4c9a5b", False: "#c8553d", None: "#8c8c8c"}[r.get("met")] for r in shown
    ]
    height = 0.45 * len(shown) + 1.2
    fig, ax = plt.subplots(figsize=(10, height))
    ys = list(range(len(shown)))[::-1]  # first row on top
    ax.barh(ys, ratios, color=colors, height=0.6,
            xerr=[[r - lo for r, lo in zip(ratios, lows)],
                  [hi - r for r, hi in zip(ratios, highs)]],
            error_kw={"ecolor": "#333333", "capsize": 3, "elinewidth": 1})
    for y, r in zip(ys, shown):
        if (t := target_value(r.get("target"))) is not None:
            ax.plot([t, t], [y - 0.4, y + 0.4], color="black", linewidth=2)
        ax.text(max(highs) * 1.02, y, f"{r['ratio']:.2f}", va="center", fontsize=8)
    ax.axvline(1.0, color="#999999", linewidth=0.8, linestyle=":")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("ratio ours / peer (bar: median of pairs, green met / red missed / grey no "
                  "target; whisker: min-max; black line: target)", fontsize=8)
    ax.set_xlim(0, max([*highs, *(target_value(r.get("target")) or 0 for r in shown)]) * 1.12)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: Sequence[str]) -> int:
    """`python -m bench.plot [results.json]`: the picture of a results file (default: latest)."""
    import json
    import os

    from bench.common import REPO

    results = argv[0] if argv else os.path.join(REPO, "bench", "results", "latest.json")
    with open(results) as f:
        doc = json.load(f)
    path = os.path.splitext(results)[0] + ".png"
    title = f"make bench, {doc.get('started_utc', '')[:16]} UTC: ours / peer"
    return 0 if write_picture(doc["rows"], path, title) else 1


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
