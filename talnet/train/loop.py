"""`talnet train`: the training loop, one video crop per step, checkpoint every epoch.

Runs alone or under `torchrun --nproc_per_node=N` (DistributedDataParallel: gloo on CPU,
nccl on GPU); each process takes every N-th crop of the same shuffled epoch, so N processes
see N videos per optimizer step. Rank 0 logs, evaluates and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from talnet.config import Config, save_config
from talnet.data.dataset import TrainingData
from talnet.errors import TalnetError
from talnet.io.annotations import clip_for_training, labels_of, load_ground_truth
from talnet.io.features import read_meta
from talnet.model.talnet import TalNet
from talnet.train.checkpoint import (
    load_checkpoint,
    model_from_checkpoint,
    model_state,
    save_checkpoint,
)
from talnet.train.objective import TrainingObjective
from talnet.train.runfiles import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LOG_FILE,
    LOSS_NAMES,
    TOTAL_LOSS,
    VAL_MAP_AT_HALF,
    VAL_MAP_AVERAGE,
    append_log,
    trim_log,
)


@dataclass
class TrainResult:
    """Where the run's files are and how its last epoch ended."""

    checkpoint: Path
    log: Path
    epochs: int
    last: dict[str, Any]


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


def train(
    annotations: str | Path,
    feat_dir: str | Path,
    out_dir: str | Path,
    config: Config,
    train_subset: str = "validation",
    val_subset: str | None = None,
    resume: bool = False,
    epochs: int | None = None,
    device: str = "cpu",
    amp: bool = False,
    progress: bool = True,
    log_fn=print,
) -> TrainResult:
    """Train TAL-Net on one subset; write RUN_DIR/checkpoint.pt, config.yaml and log.jsonl.

    With `resume`, the run continues from RUN_DIR/checkpoint.pt with the config saved there
    (`epochs`, when given, overrides train.epochs in either case).
    """
    out = Path(out_dir)
    rank, world = _init_distributed(device)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TalnetError("--device cuda asked for, but no CUDA device is available")
        if world > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    amp = amp and device.startswith("cuda")
    meta = read_meta(feat_dir)
    gt = clip_for_training(load_ground_truth(annotations, train_subset))
    val_gt = load_ground_truth(annotations, val_subset) if val_subset else None
    ckpt_path = out / CHECKPOINT_FILE
    start_epoch, ckpt = 0, None
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        config = Config.from_dict(ckpt["config"], ckpt_path)
        start_epoch = int(ckpt["epoch"])
    if epochs is not None:
        config.train.epochs = epochs
    classes = list(ckpt["classes"]) if ckpt else labels_of(gt)
    if not classes:
        raise TalnetError(f"no labelled action in subset {train_subset!r}", annotations)
    data = TrainingData(gt, feat_dir, meta, classes)
    tcfg = config.train

    torch.manual_seed(tcfg.seed)
    if ckpt:
        model, _, _ = model_from_checkpoint(ckpt, ckpt_path)
    else:
        dims = dict(zip(meta.streams, meta.dims or [], strict=True))
        model = TalNet(dims, len(classes), config.model)
    model.to(device)
    objective: torch.nn.Module = TrainingObjective(model, tcfg)
    if world > 1:
        objective = torch.nn.parallel.DistributedDataParallel(objective)
    optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    sampler = torch.Generator().manual_seed(tcfg.seed * 1009 + rank)
    if ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        sampler.set_state(ckpt["rng"]["sampler"][rank % len(ckpt["rng"]["sampler"])])
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        save_config(out / CONFIG_FILE, config)
        trim_log(out / LOG_FILE, start_epoch)
        if start_epoch:
            log_fn(f"resuming from epoch {start_epoch} of {tcfg.epochs} ({ckpt_path})")

    crops_per_epoch = len(data) * tcfg.windows_per_video
    steps_per_epoch = math.ceil(crops_per_epoch / world)
    last: dict[str, Any] = {}
    for epoch in range(start_epoch, tcfg.epochs):
        began = time.perf_counter()
        model.train()
        # the same shuffled order on every rank (seeded by epoch); each takes its share
        order = torch.randperm(
            crops_per_epoch, generator=torch.Generator().manual_seed(tcfg.seed + 7919 * epoch)
        ) % len(data)
        mine = order[rank::world].tolist()
        mine += order[: steps_per_epoch - len(mine)].tolist()  # equal step counts for DDP
        totals = torch.zeros(len(LOSS_NAMES) + 1, dtype=torch.float64)
        bar = tqdm(
            mine, desc=f"epoch {epoch + 1}/{tcfg.epochs}", unit="step", leave=False,
            disable=not progress or rank != 0,
        )  # fmt: skip
        for step, index in enumerate(bar):
            lr = learning_rate(config, epoch + step / steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            crop = data.crop(index, tcfg.max_steps, sampler)
            feats = {s: x.to(device) for s, x in crop.features.items()}
            autocast = (
                torch.autocast("cuda", dtype=torch.float16) if amp else contextlib.nullcontext()
            )
            with autocast:
                losses = objective(feats, crop.segments.to(device), crop.labels.to(device), sampler)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses["loss"]).backward()
            if tcfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            values = torch.tensor([losses[n].item() for n in (*LOSS_NAMES, TOTAL_LOSS)])
            totals += values.double()
            if step % 10 == 0:
                bar.set_postfix(loss=f"{values[-1]:.3f}", lr=f"{lr:.2g}")
        if world > 1:
            dist.all_reduce(totals)
        means = (totals / (steps_per_epoch * world)).tolist()
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "steps": steps_per_epoch}
        names = (*LOSS_NAMES, TOTAL_LOSS)
        record.update({n: round(v, 5) for n, v in zip(names, means, strict=True)})
        if rank == 0:
            if val_gt is not None and (
                (epoch + 1) % tcfg.eval_every == 0 or epoch + 1 == tcfg.epochs
            ):
                record.update(_held_out_map(model, classes, meta, config, feat_dir, val_gt, device))
            record["time_s"] = round(time.perf_counter() - began, 2)
            state = model_state(model, config, classes, meta)
            state.update(
                epoch=epoch + 1,
                optimizer=optimizer.state_dict(),
                rng={"torch": torch.get_rng_state(), "sampler": _gather_states(sampler, world)},
            )
            save_checkpoint(ckpt_path, state)
            append_log(out / LOG_FILE, record)
            log_fn(_describe(record, tcfg.epochs))
        elif world > 1:
            _gather_states(sampler, world)
        if world > 1:
            dist.barrier()
        last = record
    if world > 1:
        dist.destroy_process_group()
    return TrainResult(ckpt_path, out / LOG_FILE, tcfg.epochs, last)


def _held_out_map(model, classes, meta, config, feat_dir, val_gt, device) -> dict[str, float]:
    from talnet.detect import detect_features
    from talnet.detect.detector import Detector
    from talnet.evaluate.detection import evaluate_detection

    detector = Detector(model, classes, meta, config, device)
    dets = detect_features(detector, feat_dir, sorted(val_gt), progress=False)
    report = evaluate_detection(val_gt, dets)
    at_half = float(report.mAP[list(report.tious).index(0.5)]) if 0.5 in report.tious else None
    return {VAL_MAP_AT_HALF: round(at_half, 4), VAL_MAP_AVERAGE: round(report.average, 4)}


def _describe(record: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.3f}"]
    parts += [f"{n} {record[n]:.3f}" for n in LOSS_NAMES]
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
