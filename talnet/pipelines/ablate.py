"""`talnet ablate`: train the paper's ablation variants on the same data, one table of mAP."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talnet.config import Config, Edits, edit_config
from talnet.detect.detector import Detector
from talnet.errors import TalnetError
from talnet.io.annotations import load_ground_truth
from talnet.io.atomic import write_json
from talnet.io.features import read_meta
from talnet.pipelines.evaluation import evaluate_detector, score_fusion_weights
from talnet.train.loop import FitOptions, train

# name -> edits of the base config
VARIANTS: dict[str, Edits] = {
    "TAL-Net (multi-tower, context, late fusion)": {},
    "single shared receptive field": {"model": {"multi_tower": False}},
    "no context in proposals": {"model": {"spn_context": False}},
    "no context in classifier": {"model": {"cls_context": False}},
    "no context at all": {"model": {"spn_context": False, "cls_context": False}},
    "early fusion": {"model": {"fusion": "early"}},
    "rgb only": {"model": {"streams": ["rgb"]}},
    "flow only": {"model": {"streams": ["flow"]}},
    "narrow towers (tower_dim 32)": {"model": {"tower_dim": 32}},
    "wide towers (tower_dim 128)": {"model": {"tower_dim": 128}},
    "no boundary head": {
        "model": {"boundary_head": False},
        "proposals": {"actionness_thresholds": []},
    },
    "max pooling (the paper's towers and SoI)": {
        "model": {"tower_pool": "max", "soi_mode": "interp"},
    },
}
# Detection-time knobs, evaluated on the base model without retraining.
PROPOSAL_COUNTS = (25, 50, 200)
# ... and, for a base with a boundary head, its edge snapping off.
NO_SNAP: Edits = {"detect": {"boundary_snap": False}}
# ... and, for a base whose scores take the window classifier's, the proposal classifier's alone.
NO_WINDOW: Edits = {"detect": {"window_score_weight": 0.0}}


def edge_switch(on: bool) -> tuple[str, Edits]:
    """... and, for a base with an edge regressor, the knob's label and the edits that switch
    detect.edge_regress from `on` (on and off both measured on one model, whichever the fold
    choice kept)."""
    return f"edge regressor {'off' if on else 'on'}", {"detect": {"edge_regress": not on}}


@dataclass
class AblationRow:
    """One variant's result on the test subset (mAPs NaN and `skipped` the reason when the
    features cannot make the variant a model of its own)."""

    name: str
    map_at_half: float
    map_avg: float
    train_s: float
    seed: int = 0
    skipped: str | None = None

    def as_json(self) -> dict:
        """The row for ablation.json: a skipped variant's mAPs are null (JSON has no NaN)."""
        row = dict(self.__dict__)
        if self.skipped:
            row["map_at_half"] = row["map_avg"] = None
        return row


def _model_streams(config: Config, feature_streams: list[str]) -> list[str]:
    """The streams a config's model uses on features that have `feature_streams`."""
    return list(config.model.streams or feature_streams)


def skip_reason(edits: Edits, base: Config, feature_streams: list[str]) -> str | None:
    """Why the variant `edits` of `base` cannot train a model of its own on features with these
    streams (a stream they lack, early fusion of one stream, the base model again), else None."""
    config = edit_config(base, edits)
    streams = _model_streams(config, feature_streams)
    have = ", ".join(feature_streams)
    missing = [s for s in streams if s not in feature_streams]
    if missing:
        return f"needs the {', '.join(missing)} stream, which the features lack (they have {have})"
    if config.model.fusion == "early" and len(streams) < 2:
        return f"early fusion needs two streams, the model has one ({', '.join(streams)})"
    if not edits:
        return None  # the base itself
    if _model_streams(base, feature_streams) == streams:
        config.model.streams = copy.deepcopy(base.model.streams)
    if config == base:
        pairs = [(key, value) for fields in edits.values() for key, value in fields.items()]
        if any(key == "streams" for key, _ in pairs):
            return f"the base model already uses only {', '.join(streams)}"
        return "the base config already has " + ", ".join(f"{k} {v}" for k, v in pairs)
    return None


def run_ablation(
    annotations: str | Path,
    feat_dir: str | Path,
    out_dir: str | Path,
    base: Config,
    names: list[str] | None = None,
    train_subset: str = "validation",
    test_subset: str = "test",
    progress: bool = True,
    log_fn: Callable[[str], None] = print,
    seeds: list[int] | None = None,
) -> list[AblationRow]:
    """Train each variant (same data and schedule) once per training seed (default: the
    config's) and evaluate it on `test_subset`; one row per variant and seed.

    Variants the features cannot make (flow only on RGB features, early fusion of one stream,
    RGB only when RGB is all there is) are decided before any training, logged and given one
    skipped row; TalnetError naming the features if no variant can run.
    """
    chosen = names or list(VARIANTS)
    unknown = [n for n in chosen if n not in VARIANTS]
    if unknown:
        raise TalnetError(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    test_gt = load_ground_truth(annotations, test_subset)
    out = Path(out_dir)
    rows: list[AblationRow] = []
    feature_streams = read_meta(feat_dir).streams
    configs = {name: edit_config(base, VARIANTS[name]) for name in chosen}
    skipped = {name: skip_reason(VARIANTS[name], base, feature_streams) for name in chosen}
    skipped = {name: why for name, why in skipped.items() if why}
    if len(skipped) == len(chosen):
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped.items())
        raise TalnetError(f"no ablation variant can run on these features ({reasons})", feat_dir)

    seeds = list(seeds) if seeds else [base.train.seed]

    def evaluate(detector: Detector, name: str, seconds: float, seed: int) -> None:
        result = evaluate_detector(detector, feat_dir, test_gt)
        at_half, average = result.map_at(0.5), float(result.report.average)
        rows.append(AblationRow(name, at_half, average, seconds, seed))
        log_fn(f"  {name}: mAP@0.5 {100 * at_half:.1f}, avg {100 * average:.1f}")
        write_json(out / "ablation.json", [row.as_json() for row in rows])

    for name, why in skipped.items():
        log_fn(f"skipping {name}: {why}")
        rows.append(AblationRow(name, math.nan, math.nan, 0.0, seeds[0], skipped=why))
    trained = [name for name in chosen if name not in skipped]
    runs = [(name, seed) for name in trained for seed in seeds]
    for n, (name, seed) in enumerate(runs):
        i = chosen.index(name)
        log_fn(f"[{n + 1}/{len(runs)}] {name}" + (f", seed {seed}" if len(seeds) > 1 else ""))
        config = copy.deepcopy(configs[name])
        config.train.seed = seed
        folder = f"variant_{i:02d}" + (f"_seed{seed}" if len(seeds) > 1 else "")
        began = time.perf_counter()
        result = train(
            annotations, feat_dir, out / folder, config,
            train_subset=train_subset, options=FitOptions(
                progress=progress, log_fn=_silent, score_fusion=score_fusion_weights
            ),
        )  # fmt: skip
        seconds = time.perf_counter() - began
        detector = Detector.from_checkpoint(result.checkpoint)
        evaluate(detector, name, seconds, seed)
        if name == trained[0]:
            knobs = {f"{count} proposals": {"proposals": {"post_nms_test": count}}
                     for count in PROPOSAL_COUNTS}  # fmt: skip
            if detector.config.model.boundary_head and detector.config.detect.boundary_snap:
                knobs["no boundary snap"] = NO_SNAP
            if detector.config.detect.window_score_weight > 0:
                knobs["no window classifier"] = NO_WINDOW
            if detector.model.edge_head is not None:
                label, edits = edge_switch(detector.config.detect.edge_regress)
                knobs[label] = edits
            for label, edits in knobs.items():
                changed = detector.with_config(edit_config(detector.config, edits))
                evaluate(changed, f"{name}, {label}", 0.0, seed)
    return rows


def _silent(_line: str) -> None:
    """Variants train quietly; the ablation logs one line per variant instead."""


def format_ablation(rows: list[AblationRow]) -> str:
    """The ablation table: variant, mAP@0.5 (%), average mAP over tIoU 0.1-0.7 (%), time.

    With several seeds per variant: mean and standard deviation over seeds, and the seeds'
    mAP@0.5 values, so a difference can be read against the seed-to-seed spread.
    """
    groups: dict[str, list[AblationRow]] = {}
    for r in rows:
        groups.setdefault(r.name, []).append(r)
    # Skipped variants last, so the trained ones read as one block.
    groups = dict(sorted(groups.items(), key=lambda item: item[1][0].skipped is not None))
    many = any(len(g) > 1 for g in groups.values())
    width = max(len("variant"), *(len(name) for name in groups))
    head = f"{'variant'.ljust(width)}  mAP@0.5  avg mAP  train s"
    lines = [head + ("  seeds   mAP@0.5 per seed" if many else "")]
    for name, group in groups.items():
        if group[0].skipped:
            lines.append(f"{name.ljust(width)}  skipped: {group[0].skipped}")
            continue
        at_half = np.array([r.map_at_half for r in group]) * 100
        avg = np.array([r.map_avg for r in group]) * 100
        train_s = np.mean([r.train_s for r in group])
        train = f"{train_s:7.0f}" if train_s else "      -"
        if not many:
            lines.append(f"{name.ljust(width)}  {at_half[0]:7.1f}  {avg[0]:7.1f}  {train}")
            continue
        spread = f"±{at_half.std(ddof=1):.1f}" if len(group) > 1 else ""
        per_seed = " ".join(f"{v:.1f}" for v in at_half)
        lines.append(
            f"{name.ljust(width)}  {at_half.mean():7.1f}  {avg.mean():7.1f}  {train}  "
            f"{len(group):5d}   {per_seed} {spread}".rstrip()
        )
    return "\n".join(lines)
