"""Draws the benchmark chart of the docs site from the tables of benchmarks/RESULTS.md.

``python docs/bench_chart.py [RESULTS.md] [out.png]``; the site's build (docs/site_hooks.py) calls
``render()`` so that the chart always shows the figures of the tables next to it. Needs matplotlib
(a dev dependency, not one of wsevents).
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md"
# The tables the chart shows: the servers on each loop (scenarios 1-7), ratios to websockets.
CHARTED = ("Servers, asyncio loop", "Servers, uvloop loop")
BASELINE = "websockets"
TICKS = (0.2, 0.5, 1, 2, 5, 10, 20, 50)


def tables(results: str) -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """Every ``### title`` table between the bench markers: title -> (column names, row -> cells)."""
    block = results.split("<!-- bench:start -->", 1)[-1].split("<!-- bench:end -->", 1)[0]
    found: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
    for title, body in re.findall(r"^### (.+?)\n\n((?:\|.*\n?)+)", block, re.M):
        lines = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in body.splitlines()]
        header, rows = lines[0], lines[2:]
        found[title.split(" (")[0]] = (header[1:], {row[0]: row[1:] for row in rows})
    return found


def ratio(cell: str, contender: str) -> float:
    """The "(1.87×)" of a cell: above 1 is better than websockets; websockets' own cells are 1."""
    match = re.search(r"\(([\d.,]+)×\)", cell)
    if match:
        return float(match[1].replace(",", ""))
    if contender == BASELINE:
        return 1.0
    raise ValueError(f"no ratio to {BASELINE} in the cell {cell!r} of {contender}")


def render(results: str) -> bytes:
    """The chart as a PNG: one panel per charted table, a bar per contender and scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = tables(results)
    missing = [title for title in CHARTED if title not in found]
    if missing:
        raise ValueError(f"benchmarks/RESULTS.md has no table {missing} between its bench markers")
    figure, axes = plt.subplots(1, len(CHARTED), figsize=(13, 6.5), sharey=True)
    for ax, title in zip(axes, CHARTED, strict=True):
        columns, rows = found[title]
        height = 0.8 / len(rows)
        for i, (contender, cells) in enumerate(rows.items()):
            ys = [row - 0.4 + (i + 0.5) * height for row in range(len(columns))]
            ax.barh(ys, [ratio(cell, contender) for cell in cells], height, label=contender)
        ax.set_xscale("log")
        ax.set_xticks(TICKS, [f"{tick:g}×" for tick in TICKS])
        ax.minorticks_off()
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel(f"ratio to {BASELINE} (log scale; right of 1 is better)")
        ax.set_yticks(range(len(columns)), [column.split(" (")[0] for column in columns])
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # the axes share y: once for all, the first scenario on top
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncols=len(labels), frameon=False)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=90, metadata={"Software": None})
    plt.close(figure)
    return out.getvalue()


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else RESULTS
    target = Path(argv[1]) if len(argv) > 1 else Path("benchmarks.png")
    target.write_bytes(render(source.read_text()))
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
