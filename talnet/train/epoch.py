"""One process's optimizer steps: the learning-rate schedule, its share of each epoch's
shuffled crops, one epoch of steps (AMP, gradient clipping, DDP) and the RNG states that let a
resumed run draw the same crops."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from talnet.config import Config
from talnet.data.dataset import TrainingData
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


def steps_per_epoch(videos: int, config: Config, group: Distributed) -> int:
    """Optimizer steps each process takes per epoch: its share of all crops, rounded up."""
    return math.ceil(videos * config.train.windows_per_video / group.world)


def crops_of_rank(videos: int, config: Config, epoch: int, group: Distributed) -> list[int]:
    """The video indices this process crops in `epoch`, one per step."""
    tcfg = config.train
    # the same shuffled order on every rank (seeded by epoch); each takes its share
    shuffle = torch.Generator().manual_seed(tcfg.seed + 7919 * epoch)
    order = torch.randperm(videos * tcfg.windows_per_video, generator=shuffle) % videos
    mine = order[group.rank :: group.world].tolist()
    # equal step counts for DDP, whose every step waits for all ranks' gradients
    mine += order[: steps_per_epoch(videos, config, group) - len(mine)].tolist()
    return mine


@dataclass
class EpochLosses:
    """How one epoch's steps went: steps per process, the last lr, mean losses over all ranks."""

    steps: int
    lr: float
    means: dict[str, float]


@dataclass
class Stepper:
    """One process's training machinery: model and DDP wrapper, Adam, AMP scaler, crop sampler."""

    model: TalNet
    trainer: torch.nn.Module
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
        """Move `model` to `device`, wrap it for DDP, and give it a fresh optimizer and sampler."""
        amp = amp and device.startswith("cuda")  # float16 autocast and scaling are CUDA paths
        tcfg = config.train
        model.to(device)
        trainer = group.wrap(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        sampler = torch.Generator().manual_seed(tcfg.seed * 1009 + group.rank)  # rank's own crops
        return cls(model, trainer, optimizer, scaler, sampler, group, device, amp)

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
            crops, desc=f"epoch {epoch + 1}/{tcfg.epochs}", unit="step", leave=False,
            disable=not progress,
        )  # fmt: skip
        lr = tcfg.lr
        for step, index in enumerate(bar):
            lr = learning_rate(config, epoch + step / steps)
            values = self._step(data, index, config, lr, names)
            totals += values.double()
            if step % 10 == 0:
                bar.set_postfix(loss=f"{values[-1]:.3f}", lr=f"{lr:.2g}")
        self.group.sum(totals)
        means = (totals / (steps * self.group.world)).tolist()
        return EpochLosses(steps, lr, dict(zip(names, means, strict=True)))

    def _step(
        self, data: TrainingData, index: int, config: Config, lr: float, names: tuple[str, ...]
    ) -> torch.Tensor:
        """One optimizer step on a crop of video `index`; its losses, in `names` order."""
        tcfg = config.train
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = lr
        crop = data.crop(index, tcfg.max_steps, self.sampler)
        feats = {s: x.to(self.device) for s, x in crop.features.items()}
        gt = GroundTruthSteps(crop.segments.to(self.device), crop.labels.to(self.device))
        autocast = (
            torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()
        )
        with autocast:
            _, losses = self.trainer(feats, gt, self.sampler)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses[TOTAL_LOSS]).backward()
        if tcfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tcfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return torch.tensor([losses[n].item() for n in names])
