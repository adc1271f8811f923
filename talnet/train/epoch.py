"""One process's optimizer steps: the learning-rate schedule, its share of each epoch's
shuffled crops, one epoch of steps (AMP, gradient clipping, gradients averaged over processes)
and the RNG states that let a resumed run draw the same crops."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from talnet.config import Config
from talnet.data.dataset import Crop, TrainingData
from talnet.model.talnet import TalNet
from talnet.model.targets import GroundTruthSteps
from talnet.train.distributed import Distributed
from talnet.train.runfiles import TOTAL_LOSS


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


def crops_per_rank(videos: int, config: Config, group: Distributed) -> int:
    """Crops each process takes per epoch: its share of all crops, rounded up."""
    return math.ceil(videos * config.train.windows_per_video / group.world)


def steps_per_epoch(videos: int, config: Config, group: Distributed) -> int:
    """Optimizer steps each process takes per epoch: its crops, `videos_per_batch` a step."""
    return math.ceil(crops_per_rank(videos, config, group) / config.train.videos_per_batch)


def crops_of_rank(videos: int, config: Config, epoch: int, group: Distributed) -> list[int]:
    """The video indices this process crops in `epoch`, in the order its steps take them."""
    tcfg = config.train
    # the same shuffled order on every rank (seeded by epoch); each takes its share
    shuffle = torch.Generator().manual_seed(tcfg.seed + 7919 * epoch)
    order = torch.randperm(videos * tcfg.windows_per_video, generator=shuffle) % videos
    mine = order[group.rank :: group.world].tolist()
    # equal step counts on every rank: each step waits for all ranks' gradients
    mine += order[: crops_per_rank(videos, config, group) - len(mine)].tolist()
    return mine


def batches(crops: list[int], size: int) -> list[list[int]]:
    """Consecutive groups of `size` crops (the last may be smaller), one per optimizer step."""
    return [crops[i : i + size] for i in range(0, len(crops), size)]


@dataclass
class EpochLosses:
    """How one epoch's steps went: steps per process, the last lr, mean losses over all ranks."""

    steps: int
    lr: float
    means: dict[str, float]


@dataclass
class Stepper:
    """One process's training machinery: model, Adam, AMP scaler, crop sampler, its group."""

    model: TalNet
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    sampler: torch.Generator
    group: Distributed
    device: str
    amp: bool

    @classmethod
    def build(
        cls, model: TalNet, config: Config, device: str, amp: bool, group: Distributed
    ) -> Stepper:
        """Move `model` to `device`, start it from rank 0's weights, and give it a fresh optimizer
        and sampler."""
        amp = amp and device.startswith("cuda")  # float16 autocast and scaling are CUDA paths
        tcfg = config.train
        model.to(device)
        group.share_parameters(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        sampler = torch.Generator().manual_seed(tcfg.seed * 1009 + group.rank)  # rank's own crops
        return cls(model, optimizer, scaler, sampler, group, device, amp)

    def restore(self, optimizer: dict[str, Any] | None, rng: dict[str, Any] | None) -> None:
        """Continue a saved run: its optimizer state, and the RNG states its last epoch left."""
        if optimizer is not None:
            self.optimizer.load_state_dict(optimizer)
        if rng is not None:
            torch.set_rng_state(rng["torch"])
            # modulo: a run may resume on more processes than it was saved from
            self.sampler.set_state(rng["sampler"][self.group.rank % len(rng["sampler"])])

    def rng_states(self) -> dict[str, Any]:
        """What `restore` takes back: global RNG state, every rank's sampler (call on all ranks)."""
        states = self.group.gather(self.sampler.get_state())
        return {"torch": torch.get_rng_state(), "sampler": states}

    def run_epoch(
        self, data: TrainingData, config: Config, epoch: int, progress: bool
    ) -> EpochLosses:
        """One epoch of steps on this rank's crops, losses averaged over every rank's steps."""
        tcfg = config.train
        self.model.train()
        crops = crops_of_rank(len(data), config, epoch, self.group)
        steps = steps_per_epoch(len(data), config, self.group)
        names = (*self.model.loss_names, TOTAL_LOSS)
        totals = torch.zeros(len(names), dtype=torch.float64)
        bar = tqdm(
            total=len(crops), desc=f"epoch {epoch + 1}/{tcfg.epochs}", unit="video",
            leave=False, disable=not progress,
        )  # fmt: skip
        lr = tcfg.lr
        for step, batch in enumerate(batches(crops, tcfg.videos_per_batch)):
            lr = learning_rate(config, epoch + step / steps)
            values = self._step(data, batch, config, lr, names)
            totals += values.double()
            bar.update(len(batch))
            if step % 10 == 0:
                bar.set_postfix(loss=f"{values[-1]:.3f}", lr=f"{lr:.2g}")
        bar.close()
        self.group.sum(totals)
        means = (totals / (steps * self.group.world)).tolist()
        return EpochLosses(steps, lr, dict(zip(names, means, strict=True)))

    def _step(
        self, data: TrainingData, batch: list[int], config: Config, lr: float,
        names: tuple[str, ...],
    ) -> torch.Tensor:
        """One optimizer step on crops of the videos in `batch`; its losses, in `names` order.

        Crops of equal length go through the networks together; groups of other lengths add
        their gradients (weighted by their share of the batch) before the one optimizer step."""
        tcfg = config.train
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = lr
        crops = [data.crop(index, tcfg.max_steps, self.sampler) for index in batch]
        groups: dict[int, list[Crop]] = {}
        for crop in crops:
            groups.setdefault(crop.length, []).append(crop)
        self.optimizer.zero_grad(set_to_none=True)
        values = torch.zeros(len(names), dtype=torch.float64)
        for group in groups.values():
            share = len(group) / len(crops)
            losses = self._losses(group)
            total = losses[TOTAL_LOSS] if share == 1 else losses[TOTAL_LOSS] * share
            self.scaler.scale(total).backward()
            values += share * torch.tensor([losses[n].item() for n in names], dtype=torch.float64)
        self.group.average_gradients(self.model.parameters())  # one exchange per step
        if tcfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tcfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return values

    def _losses(self, crops: list[Crop]) -> dict[str, torch.Tensor]:
        """The model's losses on crops of equal length, run through the networks together."""
        if len(crops) == 1:  # one video: (T, C) inputs, as a step always had them
            feats = {s: x.to(self.device) for s, x in crops[0].features.items()}
            targets: GroundTruthSteps | list[GroundTruthSteps] = _targets(crops[0], self.device)
        else:
            feats = {
                s: torch.stack([c.features[s] for c in crops]).to(self.device)
                for s in crops[0].features
            }
            targets = [_targets(c, self.device) for c in crops]
        autocast = (
            torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()
        )
        with autocast:
            return self.model(feats, targets, self.sampler)[1]


def _targets(crop: Crop, device: str) -> GroundTruthSteps:
    return GroundTruthSteps(crop.segments.to(device), crop.labels.to(device))
