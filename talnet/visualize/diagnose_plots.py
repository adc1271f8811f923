"""Matplotlib figures of a DETAD diagnosis (talnet.evaluate.diagnose): the false-positive
profile, the mAP gained by removing each error type, and the sensitivity to ground-truth
characteristics, drawn as in Alwassel et al. (ECCV 2018) Figs. 3 and 5, without LaTeX.

Each draw_* function fills one Axes, so `talnet diagnose`, the report and the README picture
share the drawing; figures use the Agg canvas, no pyplot.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from talnet.evaluate.diagnose import (
    ERROR_NAMES,
    ERROR_TYPES,
    LIMIT_FACTOR,
    Diagnosis,
    FalsePositiveProfile,
)
from talnet.visualize.plots import new_figure

# One colour per outcome, ERROR_TYPES order: greens for true positives and double detections,
# blue for wrong labels, reds for poor localization, pale blue for background.
ERROR_COLORS: dict[str, str] = dict(
    zip(
        ERROR_TYPES, ("#33a02c", "#b2df8a", "#1f78b4", "#fb9a99", "#e31a1c", "#a6cee3"), strict=True
    )
)
CHARACTERISTIC_COLORS = {"length": "#f0027f", "coverage": "#386cb0", "instances": "#bf5b17"}
CHARACTERISTIC_NAMES = {"length": "length", "coverage": "coverage", "instances": "# instances"}
# The files `talnet diagnose --out` and the report write, name -> caption.
FIGURES = {
    "fp_profile": f"False-positive profile: outcomes of each class's top 1G … {LIMIT_FACTOR}G "
    "predictions (G = its instances)",
    "removal_gain": f"mAP gained by removing each error type from the top-{LIMIT_FACTOR}G "
    "predictions",
    "sensitivity": "Normalized mAP and missed instances by ground-truth characteristic",
}


def draw_fp_profile(ax: Axes, profile: FalsePositiveProfile) -> None:
    """Stacked bars: share of each outcome among the predictions ranked (k-1)G+1 … kG."""
    ks = list(range(1, len(profile.bands) + 1))
    bottom = [0.0] * len(ks)
    for t, name in enumerate(ERROR_TYPES):
        heights = [100 * FalsePositiveProfile.shares(c)[t] for c in profile.bands]
        ax.bar(ks, heights, 0.8, bottom=bottom, color=ERROR_COLORS[name], label=ERROR_NAMES[name])
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_xticks(ks, [f"{k}G" for k in ks], fontsize=8)
    ax.set_xlabel("top predictions of each class")
    ax.set_ylabel("share of predictions (%)")
    ax.set_ylim(0, 100)
    ax.set_title("False-positive profile")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def draw_removal_gain(ax: Axes, diagnosis: Diagnosis) -> None:
    """Bars: mAP and mAP_N (points) gained when each false-positive type is removed."""
    names = list(diagnosis.gain)
    xs = range(len(names))
    plain = [100 * diagnosis.gain[n][0] for n in names]
    normalized = [100 * diagnosis.gain[n][1] for n in names]
    colors = [ERROR_COLORS[n] for n in names]
    ax.bar([x - 0.2 for x in xs], plain, 0.4, color=colors, edgecolor="#333", label="mAP")
    ax.bar([x + 0.2 for x in xs], normalized, 0.4, color=colors, edgecolor="#333", hatch="//",
           label="mAP$_N$")  # fmt: skip
    for x, (a, b) in enumerate(zip(plain, normalized, strict=True)):
        ax.text(x - 0.2, a, f"{a:.1f}", ha="center", va="bottom", fontsize=7)
        ax.text(x + 0.2, b, f"{b:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(xs), [ERROR_NAMES[n].replace(" ", "\n") for n in names], fontsize=8)
    ax.set_ylabel("gain (points)")
    top = max([0.0, *plain, *normalized])
    ax.set_ylim(min(0.0, *plain, *normalized) * 1.15, max(1.0, top * 1.2))
    ax.axhline(0, color="#333", linewidth=0.8)
    ax.set_title(f"Removing each error type (tIoU {diagnosis.tiou:g})")
    ax.legend(
        handles=[
            Patch(facecolor="white", edgecolor="#333", label="mAP"),
            Patch(facecolor="white", edgecolor="#333", hatch="//", label="mAP$_N$"),
        ],
        fontsize=7,
        loc="upper left",
    )
    ax.grid(axis="y", alpha=0.3)


def draw_sensitivity(ax_map: Axes, ax_missed: Axes, diagnosis: Diagnosis) -> None:
    """Bars per bucket of each characteristic: normalized mAP (left) and missed share (right)."""
    x, ticks, labels = 0, [], []
    for name in CHARACTERISTIC_NAMES:
        rows = [b for b in diagnosis.sensitivity if b.characteristic == name]
        if not rows:
            continue
        xs = list(range(x, x + len(rows)))
        color = CHARACTERISTIC_COLORS[name]
        maps = [100 * (b.map_n or 0.0) for b in rows]
        missed = [100 * (b.missed_share or 0.0) for b in rows]
        ax_map.bar(xs, maps, color=color, label=CHARACTERISTIC_NAMES[name])
        ax_missed.bar(xs, missed, color=color, label=CHARACTERISTIC_NAMES[name])
        for xi, b, m, f in zip(xs, rows, maps, missed, strict=True):
            for ax, y in ((ax_map, m), (ax_missed, f)):
                text = f"{y:.0f}" if b.instances else "–"  # no instance in the bucket
                ax.text(xi, y, text, ha="center", va="bottom", fontsize=7)
        ticks += xs
        labels += [b.bucket for b in rows]
        x += len(rows) + 1
    ax_map.axhline(100 * diagnosis.sensitivity_map_n, color="#333", linestyle="--", linewidth=1)
    ax_map.set_ylabel("mAP$_N$ (%)")
    ax_map.set_title(f"Normalized mAP by bucket (all: {100 * diagnosis.sensitivity_map_n:.1f})")
    ax_missed.axhline(100 * diagnosis.missed_share, color="#333", linestyle="--", linewidth=1)
    ax_missed.set_ylabel("instances missed (%)")
    ax_missed.set_title(f"False negatives by bucket (all: {100 * diagnosis.missed_share:.1f})")
    for ax in (ax_map, ax_missed):
        ax.set_xticks(ticks, labels, fontsize=8)
        ax.set_ylim(0, 105)
        ax.grid(axis="y", alpha=0.3)
    ax_map.legend(fontsize=7, loc="upper left", ncols=3)


def figures(diagnosis: Diagnosis) -> dict[str, Figure]:
    """The three figures of a diagnosis, keyed as FIGURES."""
    fig_profile = new_figure(5.6, 3.4)
    draw_fp_profile(fig_profile.add_subplot(), diagnosis.profile)
    fig_gain = new_figure(4.6, 3.4)
    draw_removal_gain(fig_gain.add_subplot(), diagnosis)
    fig_sens = new_figure(9.0, 3.4)
    ax_map, ax_missed = fig_sens.subplots(1, 2)
    draw_sensitivity(ax_map, ax_missed, diagnosis)
    return {"fp_profile": fig_profile, "removal_gain": fig_gain, "sensitivity": fig_sens}


def overview(diagnosis: Diagnosis) -> Figure:
    """All four panels in one figure (the README picture)."""
    fig = new_figure(12.0, 6.6)
    grid = fig.add_gridspec(2, 2)
    draw_fp_profile(fig.add_subplot(grid[0, 0]), diagnosis.profile)
    draw_removal_gain(fig.add_subplot(grid[0, 1]), diagnosis)
    draw_sensitivity(fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1]), diagnosis)
    return fig
