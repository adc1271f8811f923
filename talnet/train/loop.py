"""Training: `fit` runs the epochs in memory, `train` is its file-based wrapper (features and
ground truth in, RUN_DIR/checkpoint.pt, config.yaml and log.jsonl out, resumable).

Runs alone or under `torchrun --nproc_per_node=N` (data parallel: every step's gradients
averaged over the processes, gloo on CPU, nccl on GPU); each process takes every N-th crop of
the same shuffled epoch, so N processes see N videos per optimizer step. Rank 0 logs,
evaluates and writes checkpoints. The process group is `distributed.Distributed`; one
process's steps, shares and RNG states are `epoch`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from talnet.config import Config, resolve_anchors, save_config
from talnet.data.dataset import TrainingData
from talnet.errors import TalnetError
from talnet.io.annotations import clip_for_training, labels_of, load_ground_truth
from talnet.io.features import FeatureMeta, read_meta
from talnet.model.boundary import BOUNDARY_LOSS
from talnet.model.checkpoint import (
    load_checkpoint,
    model_from_checkpoint,
    model_state,
    save_checkpoint,
)
from talnet.model.implications import learn_implications
from talnet.model.numerics import flush_denormals, zero_subnormals
from talnet.model.talnet import TalNet
from talnet.model.video_head import VIDEO_LOSS
from talnet.train.distributed import Distributed
from talnet.train.epoch import EpochLosses, Stepper
from talnet.train.fusion import (
    EDGE_CHOICE,
    FUSION_WEIGHT,
    FusionScorer,
    FusionSplit,
    edge_kept,
    fusion_split,
    keep_fold_choice,
    keep_fusion,
    score_folds,
)
from talnet.train.refit import refit_linear_heads
from talnet.train.runfiles import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LOG_FILE,
    LOSS_NAMES,
    TOTAL_LOSS,
    VAL_MAP_AT_HALF,
    append_log,
    trim_log,
)
from talnet.train.video_refit import VIDEO_REFIT_LOSS, refit_video_head

# Held-out evaluation of the model being trained: (model, classes, meta) -> metrics for the log
# (e.g. {"val_mAP@0.5": ...}); built by the caller, who knows the validation data.
Validator = Callable[[TalNet, list[str], FeatureMeta], dict[str, float]]


@dataclass
class TrainResult:
    """Where the run's files are and how its last epoch ended."""

    checkpoint: Path
    log: Path
    epochs: int
    last: dict[str, Any]
    classes: list[str] = field(default_factory=list)  # the model's, in logit order
    config: Config | None = None  # the config it trained with (a resumed run's is the saved one)


@dataclass
class TrainingState:
    """What a resumed run continues from: optimizer state, RNG states, epochs done."""

    epoch: int = 0
    optimizer: dict[str, Any] | None = None
    rng: dict[str, Any] | None = None


@dataclass
class FitOptions:
    """How `fit` runs (not what it learns): device, precision, progress, per-epoch hooks."""

    device: str = "cpu"
    amp: bool = False
    progress: bool = True
    validate: Validator | None = None
    # Called on rank 0 after each epoch with (record, model, optimizer, RNG states).
    on_epoch: Callable[[dict[str, Any], TalNet, torch.optim.Optimizer, dict], None] | None = None
    log_fn: Callable[[str], None] = field(default=print)
    # This process's place under torchrun; None reads torchrun's environment when `fit` starts
    # (`train` passes the one it read, so both agree).
    distributed: Distributed | None = None
    # Scores the fusion weights on unseen videos; needed with train.fusion_holdout or _folds.
    score_fusion: FusionScorer | None = None


def _state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The tensors of an optimizer's per-parameter state (Adam's moments)."""
    return [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]


def fit(
    model: TalNet,
    data: TrainingData,
    config: Config,
    options: FitOptions | None = None,
    state: TrainingState | None = None,
) -> dict[str, Any]:
    """Train `model` in memory for epochs state.epoch+1 .. train.epochs, one crop per step,
    Adam; returns the last epoch's record (losses, lr, held-out metrics when validated)."""
    opts, state = options or FitOptions(), state or TrainingState()
    _require_fusion_scorer(config, opts)
    flush_denormals()  # weights that decay towards zero would slow every later epoch
    last: dict[str, Any] = {}
    with (opts.distributed or Distributed.from_env()).joined(opts.device) as group:
        stepper = Stepper.build(model, config, opts.device, opts.amp, group)
        stepper.restore(state.optimizer, state.rng)
        split = fusion_split(data, config)
        if split is not None and state.epoch > split.choice_epoch:
            split = None  # a resumed run whose config holds the weight chosen before
        for epoch in range(state.epoch, config.train.epochs):
            began = time.perf_counter()
            seen = split.kept if split is not None and epoch <= split.choice_epoch else data
            losses = stepper.run_epoch(seen, config, epoch, opts.progress and group.is_main)
            # intra-op threads started before flush_denormals still compute subnormals slowly
            zero_subnormals([*model.parameters(), *_state_tensors(stepper.optimizer)])
            record = _record(epoch, losses)
            if split is not None and epoch == split.choice_epoch:
                record.update(_choose_fusion(model, split, config, opts.score_fusion))
            if epoch == config.train.epochs - 1:
                # on every rank: the same data and seed give every replica the same heads
                record.update(refit_linear_heads(model, data, config))
            if epoch == config.train.epochs - 1 and config.train.video_refit_iterations:
                record[VIDEO_REFIT_LOSS] = round(refit_video_head(model, data, config), 5)
            if epoch == config.train.epochs - 1 and config.train.fusion_folds:
                show = opts.progress and group.is_main
                record.update(_cross_fit_fusion(model, data, config, opts, show))
            rng = stepper.rng_states()  # on every rank: it gathers each rank's sampler
            if group.is_main:
                _close_epoch(record, began, stepper, data, config, opts, rng)
            group.barrier()  # the others wait while rank 0 validates and saves
            last = record
    return last


def _require_fusion_scorer(config: Config, opts: FitOptions) -> None:
    """train.fusion_holdout and fusion_folds need the caller's scorer (detection sits above
    training)."""
    key = "fusion_holdout" if config.train.fusion_holdout else "fusion_folds"
    if getattr(config.train, key) and opts.score_fusion is None:
        raise TalnetError(f"train.{key} is on, but no fusion scorer was given to fit")


def _choose_fusion(
    model: TalNet, split: FusionSplit, config: Config, score: FusionScorer
) -> dict[str, Any]:
    """Refit the linear heads on the videos trained on so far (as the final model's will be
    fitted), choose detect.step_score_weight on the held-out ones (in place: the saved config
    carries it) and say so for the log."""
    refit_linear_heads(model, split.kept, config)
    return keep_fusion(score([(model, split.held)], config), config)


def _cross_fit_fusion(
    model: TalNet, data: TrainingData, config: Config, opts: FitOptions, progress: bool = False
) -> dict[str, Any]:
    """train.fusion_folds: detect.step_score_weight chosen on folds of the training videos
    (in place: the saved config carries it), said in the log (a bar with `progress`)."""
    assert opts.score_fusion is not None  # _require_fusion_scorer
    opts.log_fn(
        f"choosing detect.step_score_weight of {config.train.fusion_weights} on "
        f"{min(config.train.fusion_folds, len(data))} folds of {len(data)} training videos"
    )
    return keep_fold_choice(score_folds(model, data, config, opts.score_fusion, progress), config)


def train(
    annotations: str | Path,
    feat_dir: str | Path,
    out_dir: str | Path,
    config: Config,
    train_subset: str = "validation",
    resume: bool = False,
    epochs: int | None = None,
    options: FitOptions | None = None,
) -> TrainResult:
    """Train TAL-Net on one subset; write RUN_DIR/checkpoint.pt, config.yaml and log.jsonl.

    With `resume`, the run continues from RUN_DIR/checkpoint.pt with the config saved there
    (`epochs`, when given, overrides train.epochs in either case).
    """
    opts = options or FitOptions()
    group = opts.distributed or Distributed.from_env()
    out = Path(out_dir)
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise TalnetError("--device cuda asked for, but no CUDA device is available")
    opts = replace(opts, device=group.device_for(opts.device), distributed=group)
    meta = read_meta(feat_dir)
    gt = clip_for_training(load_ground_truth(annotations, train_subset))
    ckpt_path = out / CHECKPOINT_FILE
    ckpt, state = None, TrainingState()
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        config = Config.from_dict(ckpt["config"], ckpt_path)
        state = TrainingState(int(ckpt["epoch"]), ckpt["optimizer"], ckpt["rng"])
    else:  # anchors given as fractions of a resampled video's length become steps here
        config = resolve_anchors(config, meta.resample_steps, feat_dir)
    if epochs is not None:
        config.train.epochs = epochs
    classes = list(ckpt["classes"]) if ckpt else labels_of(gt)
    if not classes:
        raise TalnetError(f"no labelled action in subset {train_subset!r}", annotations)
    if config.train.learn_implications and not ckpt:
        learned = learn_implications(gt, classes)
        own = config.detect.implied_labels
        config.detect.implied_labels = own + [p for p in learned if p not in own]
        if learned:
            opts.log_fn("labels that imply others (a detection of the first counts for both): "
                        + ", ".join(f"{a} -> {b}" for a, b in learned))  # fmt: skip
    data = TrainingData(gt, feat_dir, meta, classes)

    torch.manual_seed(config.train.seed)
    if ckpt:
        model, _, _ = model_from_checkpoint(ckpt, ckpt_path)
    else:
        dims = dict(zip(meta.streams, meta.dims or [], strict=True))
        try:
            model = TalNet(dims, len(classes), config)
        except TalnetError as exc:  # model.streams names a stream these features lack
            raise TalnetError(str(exc), feat_dir) from exc
    _require_fusion_scorer(config, opts)  # before the run folder is written
    if group.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(out / CONFIG_FILE, config)
        trim_log(out / LOG_FILE, state.epoch)
        if state.epoch:
            opts.log_fn(f"resuming from epoch {state.epoch} of {config.train.epochs} ({ckpt_path})")

    def on_epoch(record: dict[str, Any], model: TalNet, optimizer, rng: dict) -> None:
        saved = model_state(model, config, classes, meta)
        saved.update(epoch=record["epoch"], optimizer=optimizer.state_dict(), rng=rng)
        save_checkpoint(ckpt_path, saved)
        if FUSION_WEIGHT in record:  # config.yaml says the weight the run chose
            save_config(out / CONFIG_FILE, config)
        append_log(out / LOG_FILE, record)
        if opts.on_epoch is not None:
            opts.on_epoch(record, model, optimizer, rng)

    last = fit(model, data, config, replace(opts, on_epoch=on_epoch), state)
    return TrainResult(ckpt_path, out / LOG_FILE, config.train.epochs, last, classes, config)


def _record(epoch: int, losses: EpochLosses) -> dict[str, Any]:
    """The log record of 0-based `epoch`: bookkeeping first, then the mean losses."""
    record: dict[str, Any] = {"epoch": epoch + 1, "lr": losses.lr, "steps": losses.steps}
    record.update({n: round(v, 5) for n, v in losses.means.items()})
    return record


def _close_epoch(
    record: dict[str, Any],
    began: float,
    stepper: Stepper,
    data: TrainingData,
    config: Config,
    opts: FitOptions,
    rng: dict[str, Any],
) -> None:
    """Rank 0's end of an epoch: held-out metrics when due, the time, the hook, the log line."""
    epoch, epochs = record["epoch"], config.train.epochs
    if opts.validate is not None and (epoch % config.train.eval_every == 0 or epoch == epochs):
        record.update(opts.validate(stepper.model, data.classes, data.meta))
    record["time_s"] = round(time.perf_counter() - began, 2)  # validation included
    if opts.on_epoch is not None:
        opts.on_epoch(record, stepper.model, stepper.optimizer, rng)
    opts.log_fn(_describe(record, epochs))


def _describe(record: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record[TOTAL_LOSS]:.3f}"]
    parts += [
        f"{n} {record[n]:.3f}" for n in (*LOSS_NAMES, VIDEO_LOSS, BOUNDARY_LOSS) if n in record
    ]
    parts.append(f"lr {record['lr']:.2g}")
    if FUSION_WEIGHT in record:
        parts.append(f"step score weight {record[FUSION_WEIGHT]:g} (chosen)")
    if EDGE_CHOICE in record:
        parts.append(f"edge regressor {'on' if edge_kept(record[EDGE_CHOICE]) else 'off'} (chosen)")
    if VAL_MAP_AT_HALF in record:
        parts.append(f"val mAP@0.5 {record[VAL_MAP_AT_HALF]:.3f}")
    parts.append(f"{record['time_s']:.1f} s")
    return ", ".join(parts)
