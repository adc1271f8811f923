"""Matplotlib figures of the report: mAP vs tIoU, per-class AP, precision-recall, training curves.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas (no pyplot, no global state)
and saved as SVG without a date, so the same inputs give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from talnet.io.atomic import atomic_path
from talnet.visualize.colors import class_color_hex

# Small multiples of precision-recall curves stay legible up to about this many classes.
MAX_PR_PANELS = 24


def _figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def new_figure(width: float, height: float) -> Figure:
    """An empty figure (inches) on the Agg canvas with the constrained layout."""
    return _figure(width, height)


def save_png(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write `fig` as PNG atomically, without matplotlib's version in the metadata."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
        tmp.chmod(0o644)
    return Path(path)


def save_svg(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as SVG atomically, with fixed ids and no timestamp (reproducible bytes)."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "talnet"}), atomic_path(path) as tmp:
        fig.savefig(tmp, format="svg", metadata={"Date": None})
        tmp.chmod(0o644)  # readable like any web page, not the temporary file's 0600
    return Path(path)


def map_vs_tiou(tious: Sequence[float], maps: Sequence[float], average: float) -> Figure:
    """mAP (%) against the tIoU threshold, with the average as a dashed line."""
    fig = _figure(5.0, 3.4)
    ax = fig.add_subplot()
    ax.plot(tious, [100 * m for m in maps], "o-", color="#1f6feb")
    ax.axhline(100 * average, color="#888", linestyle="--", label=f"average {100 * average:.1f}")
    ax.set_xlabel("tIoU threshold")
    ax.set_ylabel("mAP (%)")
    finite = [m for m in maps if math.isfinite(m)]
    ax.set_ylim(0, max(5.0, 100 * max(finite, default=0) * 1.1))
    ax.set_title("mAP vs tIoU")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return fig


def class_ap_bars(ap_by_class: Mapping[str, float], tiou: float) -> Figure:
    """Horizontal bars of AP (%) per class at one tIoU, best on top, in each class's colour."""
    ranked = sorted(ap_by_class.items(), key=lambda kv: (kv[1], kv[0]))
    labels = [label for label, _ in ranked]
    values = [100 * ap for _, ap in ranked]
    fig = _figure(6.0, 1.2 + 0.24 * max(len(ranked), 1))
    ax = fig.add_subplot()
    ax.barh(range(len(ranked)), values, color=[class_color_hex(label) for label in labels])
    ax.set_yticks(range(len(ranked)), labels, fontsize=9)
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"AP (%) at tIoU {tiou:g}")
    ax.set_title(f"Per-class AP at tIoU {tiou:g}")
    ax.grid(axis="x", alpha=0.3)
    for y, value in enumerate(values):
        ax.text(min(value + 1, 88), y, f"{value:.1f}", va="center", fontsize=8)
    return fig


def pr_panel_classes(ap_by_class: Mapping[str, float]) -> list[str]:
    """The classes pr_curves draws, best AP first: all, or the best and worst MAX_PR_PANELS/2."""
    ranked = sorted(ap_by_class, key=lambda label: (-ap_by_class[label], label))
    if len(ranked) > MAX_PR_PANELS:
        half = MAX_PR_PANELS // 2
        ranked = ranked[:half] + ranked[-half:]
    return ranked


def pr_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ap_by_class: Mapping[str, float],
    tiou: float,
) -> Figure:
    """Small multiples of precision against recall, one panel per class of `curves` (in the
    order of pr_panel_classes), titled with its AP."""
    ranked = [label for label in pr_panel_classes(ap_by_class) if label in curves]
    cols = min(4, max(len(ranked), 1))
    rows = max(1, math.ceil(len(ranked) / cols))
    height = 2.2 * rows + 0.8
    # Fixed spacing: the constrained layout engine costs seconds with dozens of panels.
    fig = _figure(2.6 * cols, height, layout=None)
    fig.subplots_adjust(
        left=0.35 / cols, right=0.97, bottom=0.45 / height, top=1 - 0.8 / height,
        wspace=0.3, hspace=0.55,
    )  # fmt: skip
    fig.suptitle(f"Precision–recall at tIoU {tiou:g}", y=1 - 0.12 / height, va="top")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(ranked) :]:
        ax.set_axis_off()
    for ax, label in zip(axes.flat[: len(ranked)], ranked, strict=True):
        precision, recall = curves[label]
        # Markers keep curves of a handful of predictions (even a single point) visible.
        marker = "o" if len(recall) <= 40 else None
        ax.plot(recall, precision, color=class_color_hex(label), linewidth=1.6, marker=marker,
                markersize=3, clip_on=False)  # fmt: skip
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{label}  AP {100 * ap_by_class.get(label, 0.0):.1f}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("recall", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("precision", fontsize=8)
    return fig


def log_curves(
    rows: Sequence[Mapping[str, float]], keys: Sequence[str], title: str, ylabel: str
) -> Figure:
    """One line per key over the training log's rows; x is "epoch" when rows have it."""
    fig = _figure(5.5, 3.4)
    ax = fig.add_subplot()
    for key in keys:
        xs = [row.get("epoch", i + 1) for i, row in enumerate(rows) if key in row]
        ys = [row[key] for row in rows if key in row]
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=key)
    ax.set_xlabel("epoch" if any("epoch" in row for row in rows) else "log line")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
