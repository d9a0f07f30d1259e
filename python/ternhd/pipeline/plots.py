"""PNG plots of experiment results (matplotlib, Agg backend; nothing is shown on screen)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

__all__ = ["line_plot", "bar_plot"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def line_plot(path: Union[str, Path], x: Sequence[float], series: Dict[str, Sequence[Dict[str, float]]],
              xlabel: str, ylabel: str, title: str, hlines: Optional[Dict[str, float]] = None,
              logx: bool = False) -> Path:
    """One line per series; each point a ``{"mean", "std"}`` dict (error bars = std over seeds)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in series.items():
        ax.errorbar(list(x), [p["mean"] for p in pts], yerr=[p["std"] for p in pts], marker="o", capsize=3,
                    label=name)
    for name, v in (hlines or {}).items():
        ax.axhline(v, linestyle="--", linewidth=1, color="gray")
        ax.text(ax.get_xlim()[0], v, f" {name}", va="bottom", fontsize=8, color="gray")
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(x))
        ax.set_xticklabels([str(int(v)) for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bar_plot(path: Union[str, Path], labels: List[str], groups: Dict[str, Sequence[Dict[str, float]]],
             ylabel: str, title: str, ylim: Optional[tuple] = None) -> Path:
    """Grouped bars: one group per label, one bar per key of ``groups`` (``{"mean", "std"}`` points)."""
    plt = _plt()
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4))
    n = max(1, len(groups))
    w = 0.8 / n
    xs = np.arange(len(labels))
    for i, (name, pts) in enumerate(groups.items()):
        ax.bar(xs + (i - (n - 1) / 2) * w, [p["mean"] for p in pts], w, yerr=[p["std"] for p in pts], capsize=3,
               label=name)
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
