"""The PNG chart of a run: the server tables of RESULTS.md drawn from the same figures.

``draw(figures, path)`` takes what run.py measured (``{"servers/asyncio": {label: {scenario:
value}}, ...}``, the ``figures`` of ``run.py --json``) and writes one panel per scenario, a bar per
contender and loop, each labelled with its figure. run.py writes it as benchmarks/RESULTS.png next
to RESULTS.md (or to ``--chart FILE``). Needs matplotlib (benchmarks/requirements.txt).

    python benchmarks/chart.py FIGURES.json OUT.png     # from a saved run.py --json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: (scenario, unit, higher is better): the columns of the server tables, one panel each.
PANELS = [
    ("rtt", "round trips/s", True),
    ("pipelined", "messages/s", True),
    ("100 conns", "messages/s", True),
    ("1 MiB echo", "MiB/s", True),
    ("handshakes", "connections/s", True),
    ("idle memory", "KiB per connection", False),
    ("broadcast", "deliveries/s", True),
]


def server_tables(figures: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """loop -> contender -> scenario -> figure, from run.py's figures."""
    return {key.split("/", 1)[1]: rows for key, rows in figures.items() if key.startswith("servers/")}


def draw(figures: dict[str, Any], path: Path, title: str = "") -> None:
    """Writes the chart of the server tables in ``figures`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    tables = server_tables(figures)
    if not tables:
        raise ValueError("no server table to draw")
    labels = list(dict.fromkeys(label for rows in tables.values() for label in rows))
    fig, axes = plt.subplots(2, 4, figsize=(17, 8.5))
    height = 0.8 / len(tables)
    for ax, (scenario, unit, higher) in zip(list(axes.flat)[: len(PANELS)], PANELS, strict=True):
        for i, (loop, rows) in enumerate(tables.items()):
            ys = [y - 0.4 + (i + 0.5) * height for y in range(len(labels))]
            values = [rows.get(label, {}).get(scenario, 0.0) for label in labels]
            bars = ax.barh(ys, values, height, label=f"{loop} loop")
            ax.bar_label(bars, [_short(v) if v else "" for v in values], fontsize=7, padding=2)
        ax.set_title(f"{scenario} ({unit}; {'higher' if higher else 'lower'} is better)", fontsize=10)
        ax.set_yticks(range(len(labels)), [_tick(label, tables) for label in labels], fontsize=8)
        ax.invert_yaxis()
        ax.margins(x=0.2)
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _short(value) if value else "0"))
        ax.grid(axis="x", alpha=0.3)
    legend = axes.flat[-1]
    legend.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    legend.legend(handles, names, loc="center", frameon=False, title="server's event loop")
    fig.suptitle(title or "Servers: one process on one core, the load generator on the other")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)


def _tick(label: str, tables: dict[str, dict[str, dict[str, float]]]) -> str:
    """A contender measured on some loops only (Node's ws, which has its own) says so."""
    if all(label in rows for rows in tables.values()):
        return label
    return f"{label}\n(own loop, measured once)"


def _short(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


if __name__ == "__main__":
    draw(json.loads(Path(sys.argv[1]).read_text())["figures"], Path(sys.argv[2]))
