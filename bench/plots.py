"""PNG plots of a load scenario's result (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PERCENTILES = (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))


def _grouped(ax, labels: list[str], series: dict[str, list[float]], log: bool) -> None:
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


def _median(entry: dict, server: str, metric: str) -> float:
    s = entry["summary"].get(server, {})
    value = s.get(metric) if "error" not in s else None
    return value["median"] if value else 0.0


def load_plots(result: dict, outdir: Path) -> list[Path]:
    """<scenario>-throughput.png (median requests/s per cell and server) and
    <scenario>-latency.png (p50, p99, p99.9 per cell and server, log scale)."""
    outdir.mkdir(parents=True, exist_ok=True)
    cells = result["cells"]
    labels = [e["label"] for e in cells]
    servers = [s for s in result["servers"]
               if any("error" not in e["summary"].get(s, {"error": 1}) for e in cells)]
    paths = []
    width = max(6.0, 0.5 * len(labels) * max(1, len(servers)) ** 0.5 + 3)

    fig, ax = plt.subplots(figsize=(width, 4.5))
    _grouped(ax, labels, {s: [_median(e, s, "rate") for e in cells] for s in servers},
             log=False)
    ax.set_ylabel("requests/s (median)")
    ax.set_title(f"{result['title']}: throughput")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    paths.append(outdir / f"{result['scenario']}-throughput.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(len(PERCENTILES), 1, figsize=(width, 3.2 * len(PERCENTILES)),
                             sharex=True)
    for ax, (metric, name) in zip(axes, PERCENTILES):
        _grouped(ax, labels, {s: [_median(e, s, metric) for e in cells] for s in servers},
                 log=True)
        ax.set_ylabel(f"{name} latency (us)")
    axes[0].set_title(f"{result['title']}: latency percentiles (median over repetitions)")
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    paths.append(outdir / f"{result['scenario']}-latency.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
