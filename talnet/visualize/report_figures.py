"""The report's matplotlib figures, saved as SVG files under REPORT_DIR/figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from talnet.evaluate.diagnose import Diagnosis
from talnet.visualize import diagnose_plots, plots
from talnet.visualize.report_data import PAGE_TIOU, ReportMetrics
from talnet.visualize.report_inputs import is_loss_key, is_map_key


@dataclass
class Figures:
    """The figures written, file name -> caption, in the order the index shows them."""

    evaluation: dict[str, str] = field(default_factory=dict)
    training: dict[str, str] = field(default_factory=dict)
    diagnosis: dict[str, str] = field(default_factory=dict)


def write_figures(
    folder: Path,
    metrics: ReportMetrics | None,
    log: Sequence[Mapping[str, float]] | None,
    diagnosis: Diagnosis | None = None,
) -> Figures:
    """Save the evaluation figures (with `metrics`), training curves (with `log`) and the
    diagnosis plots (with `diagnosis`) as SVG."""
    figures = Figures()
    if metrics is not None:
        _evaluation_figures(folder, metrics, figures.evaluation)
    if log:
        _training_figures(folder, log, figures.training)
    if diagnosis is not None:
        for name, fig in diagnose_plots.figures(diagnosis).items():
            plots.save_svg(fig, folder / f"diagnosis_{name}.svg")
            figures.diagnosis[f"diagnosis_{name}.svg"] = diagnose_plots.FIGURES[name]
    return figures


def _evaluation_figures(folder: Path, metrics: ReportMetrics, written: dict[str, str]) -> None:
    plots.save_svg(
        plots.map_vs_tiou(metrics.tious, metrics.map_per_tiou, metrics.average_map),
        folder / "map_vs_tiou.svg",
    )
    written["map_vs_tiou.svg"] = "mAP against the tIoU threshold"
    if not metrics.class_ap:
        return
    plots.save_svg(plots.class_ap_bars(metrics.class_ap, PAGE_TIOU), folder / "class_ap.svg")
    written["class_ap.svg"] = f"AP per class at tIoU {PAGE_TIOU:g}"
    plots.save_svg(
        plots.pr_curves(metrics.pr_curves, metrics.class_ap, PAGE_TIOU),
        folder / "precision_recall.svg",
    )
    drawn = len(metrics.pr_curves)
    note = "" if drawn == len(metrics.class_ap) else f" ({drawn} best and worst classes)"
    written["precision_recall.svg"] = f"Precision–recall at tIoU {PAGE_TIOU:g}{note}"


def _training_figures(
    folder: Path, log: Sequence[Mapping[str, float]], written: dict[str, str]
) -> None:
    keys = sorted({k for row in log for k in row})
    losses = [k for k in keys if is_loss_key(k)]
    maps = [k for k in keys if is_map_key(k)]
    if losses:
        fig = plots.log_curves(log, losses, "Training losses", "loss")
        plots.save_svg(fig, folder / "training_loss.svg")
        written["training_loss.svg"] = "Training losses per epoch"
    if maps:
        fig = plots.log_curves(log, maps, "Validation mAP", "mAP")
        plots.save_svg(fig, folder / "training_map.svg")
        written["training_map.svg"] = "mAP during training"
