"""Training: `fit` runs the epochs in memory, `train` is its file-based wrapper (features and
ground truth in, RUN_DIR/checkpoint.pt, config.yaml and log.jsonl out, resumable).

Runs alone or under `torchrun --nproc_per_node=N` (DistributedDataParallel: gloo on CPU,
nccl on GPU); each process takes every N-th crop of the same shuffled epoch, so N processes
see N videos per optimizer step. Rank 0 logs, evaluates and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

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
from talnet.model.talnet import TalNet
from talnet.model.targets import GroundTruthSteps
from talnet.model.video_head import VIDEO_LOSS
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


def learning_rate(cfg: Config, epoch_progress: float) -> float:
    """Learning rate at a fractional epoch: linear warm-up from lr/10, then the schedule."""
    t = cfg.train
    if t.warmup_epochs > 0 and epoch_progress < t.warmup_epochs:
        return t.lr * (0.1 + 0.9 * epoch_progress / t.warmup_epochs)
    if t.schedule == "cosine":
        span = max(t.epochs - t.warmup_epochs, 1e-9)
        frac = min(max((epoch_progress - t.warmup_epochs) / span, 0.0), 1.0)
        return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))
    if t.schedule == "step":
        return t.lr * t.step_gamma ** sum(epoch_progress >= e for e in t.step_epochs)
    return t.lr


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
    tcfg, device = config.train, opts.device
    rank, world = _init_distributed(device)
    amp = opts.amp and device.startswith("cuda")
    model.to(device)
    trainer: torch.nn.Module = model
    if world > 1:
        trainer = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    sampler = torch.Generator().manual_seed(tcfg.seed * 1009 + rank)
    if state.optimizer is not None:
        optimizer.load_state_dict(state.optimizer)
    if state.rng is not None:
        torch.set_rng_state(state.rng["torch"])
        sampler.set_state(state.rng["sampler"][rank % len(state.rng["sampler"])])

    crops_per_epoch = len(data) * tcfg.windows_per_video
    steps_per_epoch = math.ceil(crops_per_epoch / world)
    names = (*model.loss_names, TOTAL_LOSS)
    last: dict[str, Any] = {}
    for epoch in range(state.epoch, tcfg.epochs):
        began = time.perf_counter()
        model.train()
        # the same shuffled order on every rank (seeded by epoch); each takes its share
        order = torch.randperm(
            crops_per_epoch, generator=torch.Generator().manual_seed(tcfg.seed + 7919 * epoch)
        ) % len(data)
        mine = order[rank::world].tolist()
        mine += order[: steps_per_epoch - len(mine)].tolist()  # equal step counts for DDP
        totals = torch.zeros(len(names), dtype=torch.float64)
        bar = tqdm(
            mine, desc=f"epoch {epoch + 1}/{tcfg.epochs}", unit="step", leave=False,
            disable=not opts.progress or rank != 0,
        )  # fmt: skip
        lr = tcfg.lr
        for step, index in enumerate(bar):
            lr = learning_rate(config, epoch + step / steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            crop = data.crop(index, tcfg.max_steps, sampler)
            feats = {s: x.to(device) for s, x in crop.features.items()}
            gt = GroundTruthSteps(crop.segments.to(device), crop.labels.to(device))
            autocast = (
                torch.autocast("cuda", dtype=torch.float16) if amp else contextlib.nullcontext()
            )
            with autocast:
                _, losses = trainer(feats, gt, sampler)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses[TOTAL_LOSS]).backward()
            if tcfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            values = torch.tensor([losses[n].item() for n in names])
            totals += values.double()
            if step % 10 == 0:
                bar.set_postfix(loss=f"{values[-1]:.3f}", lr=f"{lr:.2g}")
        if world > 1:
            dist.all_reduce(totals)
        means = (totals / (steps_per_epoch * world)).tolist()
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "steps": steps_per_epoch}
        record.update({n: round(v, 5) for n, v in zip(names, means, strict=True)})
        rng = {"torch": torch.get_rng_state(), "sampler": _gather_states(sampler, world)}
        if rank == 0:
            if opts.validate is not None and (
                (epoch + 1) % tcfg.eval_every == 0 or epoch + 1 == tcfg.epochs
            ):
                record.update(opts.validate(model, data.classes, data.meta))
            record["time_s"] = round(time.perf_counter() - began, 2)
            if opts.on_epoch is not None:
                opts.on_epoch(record, model, optimizer, rng)
            opts.log_fn(_describe(record, tcfg.epochs))
        if world > 1:
            dist.barrier()
        last = record
    if world > 1:
        dist.destroy_process_group()
    return last


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
    out = Path(out_dir)
    if opts.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TalnetError("--device cuda asked for, but no CUDA device is available")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            opts = replace(opts, device=f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
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
    if int(os.environ.get("RANK", "0")) == 0:
        out.mkdir(parents=True, exist_ok=True)
        save_config(out / CONFIG_FILE, config)
        trim_log(out / LOG_FILE, state.epoch)
        if state.epoch:
            opts.log_fn(f"resuming from epoch {state.epoch} of {config.train.epochs} ({ckpt_path})")

    def on_epoch(record: dict[str, Any], model: TalNet, optimizer, rng: dict) -> None:
        saved = model_state(model, config, classes, meta)
        saved.update(epoch=record["epoch"], optimizer=optimizer.state_dict(), rng=rng)
        save_checkpoint(ckpt_path, saved)
        append_log(out / LOG_FILE, record)
        if opts.on_epoch is not None:
            opts.on_epoch(record, model, optimizer, rng)

    last = fit(model, data, config, replace(opts, on_epoch=on_epoch), state)
    return TrainResult(ckpt_path, out / LOG_FILE, config.train.epochs, last)


def _describe(record: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record[TOTAL_LOSS]:.3f}"]
    parts += [
        f"{n} {record[n]:.3f}" for n in (*LOSS_NAMES, VIDEO_LOSS, BOUNDARY_LOSS) if n in record
    ]
    parts.append(f"lr {record['lr']:.2g}")
    if VAL_MAP_AT_HALF in record:
        parts.append(f"val mAP@0.5 {record[VAL_MAP_AT_HALF]:.3f}")
    parts.append(f"{record['time_s']:.1f} s")
    return ", ".join(parts)


def _init_distributed(device: str) -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _gather_states(sampler: torch.Generator, world: int) -> list[torch.Tensor]:
    """Every rank's sampler state (so a resumed run draws the same crops)."""
    state = sampler.get_state()
    if world <= 1:
        return [state]
    states = [torch.empty_like(state) for _ in range(world)]
    dist.all_gather(states, state)
    return states
