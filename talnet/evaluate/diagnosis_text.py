"""A DETAD diagnosis (talnet.evaluate.diagnose) as plain-text tables: `talnet diagnose`'s output."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from talnet.evaluate.diagnosis_types import (
    ERROR_NAMES,
    ERROR_SHORT_NAMES,
    ERROR_TYPES,
    LIMIT_FACTOR,
    MIN_NORMALIZED_PRECISION,
    Diagnosis,
    FalsePositiveProfile,
)


def format_table(d: Diagnosis) -> str:
    """The diagnosis as plain-text tables."""
    return "\n".join(_format(d))


def _pct(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def _row(cells: Iterable[str], widths: Sequence[int]) -> str:
    return "  ".join(
        c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return [_row(head, widths), *(_row(r, widths) for r in rows)]


def _format(d: Diagnosis) -> list[str]:
    lines = [
        f"DETAD diagnosis at tIoU {d.tiou:g}: {d.classes} classes, {d.instances} instances, "
        f"{d.predictions} predictions ({d.diagnosed} in the top {LIMIT_FACTOR}G of their class)",
        f"top-{LIMIT_FACTOR}G predictions: mAP {_pct(d.map)} %, mAP_N {_pct(d.map_n)} % "
        f"(N = {d.normalized_positives:.1f} instances per class)",
        "",
        "False-positive profile (%): predictions ranked (k-1)G+1 … kG in their class, "
        "G = its instances",
    ]
    head = ["k", *(ERROR_SHORT_NAMES[t] for t in ERROR_TYPES), "predictions"]
    rows = [
        [f"{k}G", *(_pct(s) for s in FalsePositiveProfile.shares(c)), str(sum(c))]
        for k, c in enumerate(d.profile.bands, 1)
    ]
    lines += _table(head, rows)
    lines += ["", f"Removing each error type from the top-{LIMIT_FACTOR}G predictions (points)"]
    rows = [
        [ERROR_NAMES[t], f"{100 * g:+.2f}", f"{100 * gn:+.2f}"] for t, (g, gn) in d.gain.items()
    ]
    lines += _table(["error type", "mAP gain", "mAP_N gain"], rows)
    lines += [
        "",
        f"Sensitivity (all predictions): mAP_N {_pct(d.sensitivity_map_n)} %, "
        f"{d.missed} of {d.instances} instances missed ({_pct(d.missed_share)} %)",
    ]
    rows = [
        [b.characteristic, b.bucket, b.range, str(b.instances), _pct(b.missed_share), _pct(b.map_n)]
        for b in d.sensitivity
    ]
    lines += _table(
        ["characteristic", "bucket", "range", "instances", "missed (%)", "mAP_N (%)"], rows
    )
    lines += ["", "Highest-scoring false positives (times in seconds)"]
    rows = []
    for name, cases in d.worst_false_positives.items():
        for p in cases[:3]:
            inst = p.instance
            near = "–" if inst is None else f"{inst.label} {inst.start:.2f}–{inst.end:.2f}"
            det = p.detection
            rows.append(
                [ERROR_NAMES[name], f"{det.score:.3f}", p.video_id, det.label,
                 f"{det.start:.2f}", f"{det.end:.2f}", f"{p.tiou:.2f}", near]
            )  # fmt: skip
    lines += _table(
        ["error type", "score", "video", "label", "start", "end", "tIoU", "closest instance"],
        rows,
    )
    lines += [
        "",
        "Longest missed instances (times in seconds; best tIoU: of a prediction of its label; "
        f"late match: matched only where normalized precision ≤ {MIN_NORMALIZED_PRECISION:.0%})",
    ]
    rows = [
        [m.video_id, m.instance.label, f"{m.instance.start:.2f}", f"{m.instance.end:.2f}",
         f"{m.instance.end - m.instance.start:.2f}", f"{m.best_tiou:.2f}",
         "–" if m.matched_score is None else f"{m.matched_score:.3f}"]
        for m in d.longest_missed
    ]  # fmt: skip
    lines += _table(
        ["video", "label", "start", "end", "length", "best tIoU", "late match score"], rows
    )
    return lines
