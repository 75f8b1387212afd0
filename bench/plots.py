"""PNG plots of a load scenario's result (matplotlib, no display needed).

Cells are drawn in one panel per connection count and pipeline depth (the
ones that vary), so that a 1-connection cell is not a sliver beside a
50-connection one on a shared axis. Every mark is the median over
repetitions with a whisker from the min to the max. Throughput axes are
linear from zero; latency axes are logarithmic, so they cannot start at
zero, and their labels say so.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PERCENTILES = (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))
#: The dimensions that get a panel each (when a result has more than one value).
PANEL_DIMS = ("conns", "pipeline")
Label = Callable[[dict[str, Any]], str]


def panels(cells: list[dict], label: Label) -> list[tuple[str, list[dict]]]:
    """The cells grouped by the PANEL_DIMS values that vary, in order of
    appearance: [(panel title, cells)]; one untitled panel if none varies."""
    varying = [d for d in PANEL_DIMS if len({e["cell"].get(d) for e in cells}) > 1]
    groups: dict[tuple, list[dict]] = {}
    for entry in cells:
        groups.setdefault(tuple(entry["cell"].get(d) for d in varying), []).append(entry)
    return [(label(dict(zip(varying, key))), entries) for key, entries in groups.items()]


def _x_label(entry: dict, label: Label) -> str:
    """A cell's label without the dimensions its panel already names."""
    rest = {k: v for k, v in entry["cell"].items() if k not in PANEL_DIMS}
    return label(rest) or entry["label"]


def _spread(entry: dict, server: str, metric: str) -> tuple[float, float, float]:
    """(median, median - min, max - median) of one server's metric in a cell;
    NaN when it was not measured (nothing is drawn)."""
    s = entry["summary"].get(server, {})
    value = s.get(metric) if "error" not in s else None
    if not value:
        return math.nan, 0.0, 0.0
    return value["median"], value["median"] - value["min"], value["max"] - value["median"]


def grouped_bars(ax: Any, labels: list[str], series: dict[str, list[float]],
                 log: bool = False) -> None:
    """Bars for a micro benchmark: one group per label, one bar per series
    (a value of 0 draws nothing), a logarithmic axis if ``log``."""
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


def _grouped(ax: Any, entries: list[dict], servers: list[str], metric: str, label: Label,
             bars: bool) -> None:
    """One group per cell, one mark per server: a bar (from zero) or a dot,
    with a min-max whisker either way."""
    width = 0.8 / max(1, len(servers))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, server in enumerate(servers):
        xs = [x + (i - (len(servers) - 1) / 2) * width for x in range(len(entries))]
        spreads = [_spread(e, server, metric) for e in entries]
        ys = [s[0] for s in spreads]
        yerr = [[s[1] for s in spreads], [s[2] for s in spreads]]
        color = colors[i % len(colors)]
        if bars:
            ax.bar(xs, ys, width, label=server, color=color, yerr=yerr, capsize=2,
                   error_kw={"elinewidth": 0.8, "ecolor": "black"})
        else:
            ax.errorbar(xs, ys, yerr=yerr, fmt="o", markersize=3, capsize=2, elinewidth=0.8,
                        label=server, color=color)
    ax.set_xticks(range(len(entries)))
    ax.set_xticklabels([_x_label(e, label) for e in entries], rotation=30, ha="right",
                       fontsize=7)
    ax.set_xlim(-0.5, len(entries) - 0.5)
    ax.grid(axis="y", alpha=0.3)


def _figure(n: int, cols: int, width: float, height: float) -> tuple[Any, list[Any]]:
    """A figure of n panels, cols to a row, each width x height inches."""
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _finish(fig: Any, axes: list[Any], title: str) -> Any:
    """Title and one legend for the whole figure; return it."""
    handles, names = axes[0].get_legend_handles_labels()
    fig.suptitle(title, fontsize=10, y=0.995)
    top = 1 - 0.6 / fig.get_figheight()  # room for the title and the legend, in inches
    if handles:
        fig.legend(handles, names, loc="upper center",
                   bbox_to_anchor=(0.5, top + 0.3 / fig.get_figheight()),
                   fontsize=7, ncol=min(8, len(names)), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top - 0.1 / fig.get_figheight()))
    return fig


def figures(result: dict, label: Label) -> dict[str, Any]:
    """{"throughput": figure, "latency": figure} of a load result (see
    load_plots); the caller closes them."""
    cells = result["cells"]
    servers = [s for s in result["servers"]
               if any("error" not in e["summary"].get(s, {"error": 1}) for e in cells)]
    groups = panels(cells, label)
    most = max((len(entries) for _, entries in groups), default=1)
    width = max(5.0, 0.45 * most * max(1, len(servers)) ** 0.5 + 2.5)
    reps = result["config"]["reps"]

    fig, axes = _figure(len(groups), min(2, len(groups)), width, 3.6)
    for ax, (title, entries) in zip(axes, groups):
        _grouped(ax, entries, servers, "rate", label, bars=True)
        ax.set_ylim(bottom=0)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("requests/s")
    throughput = _finish(fig, axes, f"{result['title']}: throughput, median and min-max of "
                         f"{reps} repetition(s)")

    # A row per panel, a column per percentile some load generator measured
    # (redis-benchmark gives no p99.9, say); a panel with nothing measured
    # stays linear (a log axis needs a positive value).
    def measured(entries: list[dict], metric: str) -> bool:
        return any(_spread(e, s, metric)[0] > 0 for e in entries for s in servers)

    columns = [(metric, name) for metric, name in PERCENTILES if measured(cells, metric)]
    fig, axes = _figure(len(groups) * max(1, len(columns)), max(1, len(columns)), width, 3.0)
    for row, (title, entries) in enumerate(groups):
        for col, (metric, name) in enumerate(columns):
            ax = axes[row * len(columns) + col]
            _grouped(ax, entries, servers, metric, label, bars=False)
            if measured(entries, metric):
                ax.set_yscale("log")
            ax.set_title(f"{name}" + (f", {title}" if title else ""), fontsize=9)
            ax.set_ylabel(f"{name} (us, log: not from 0)", fontsize=8)
    latency = _finish(fig, axes, f"{result['title']}: latency, median and min-max of "
                      f"{reps} repetition(s); log axes do not start at zero")
    return {"throughput": throughput, "latency": latency}


def load_plots(result: dict, outdir: Path, label: Label) -> list[Path]:
    """<scenario>-throughput.png (requests/s per cell and server, bars from
    zero) and <scenario>-latency.png (p50, p99 and p99.9, log scale), one
    panel per connection count and pipeline depth, median with min-max
    whiskers over repetitions. ``label(cell)`` names a cell or part of one."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if not result["cells"] or not result["servers"]:
        return paths  # nothing was measured (--only selected none of its servers)
    for kind, fig in figures(result, label).items():
        paths.append(outdir / f"{result['scenario']}-{kind}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
