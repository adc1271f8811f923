"""Refitting the per-step class head after training (train.step_refit_epochs, docs/design.md §3).

The head is linear in [features | centred means], so the best head for the training videos is a
convex problem. A few thousand noisy crop steps of Adam leave it well short of that optimum on
data where the evidence is weak per step (measured: its detections on held-out videos reach about
half of what the same linear model fitted at once reaches). Refitting solves it at once: every
step of every training video (subsampled to bounded memory), inputs standardized, full-batch
Adam, then the standardization folded back into each branch's weights so the model's forward
pass is unchanged in form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from talnet.config import Config
from talnet.data.dataset import TrainingData
from talnet.model.step_head import step_labels
from talnet.model.talnet import TalNet

STEP_REFIT_LOSS = "step_refit_loss"  # the refit's final loss, in the last epoch's log record
MAX_ROWS = 300_000  # training steps kept for the fit
MAX_VALUES = 500_000_000  # rows x input width kept (2 GB of float32)
REFIT_LR = 1e-2


def step_rows(
    model: TalNet, data: TrainingData, config: Config
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every training video's step-head inputs, all branches side by side (N, D), and each
    step's class (N,), subsampled at random (seeded) to MAX_ROWS and MAX_VALUES at most."""
    total = sum(v.length for v in data.videos)
    xs, ys = [], []
    gen = torch.Generator().manual_seed(config.train.seed)
    with torch.no_grad():
        for i, video in enumerate(data.videos):
            whole = data.crop(i, video.length, gen)  # the whole video: nothing drawn
            inputs = model.branch_inputs(whole.features)
            x = torch.cat(
                [model.branches[name].step.inputs(z)[0] for name, z in inputs.items()], dim=-1
            )
            rate = min(1.0, MAX_ROWS / total, MAX_VALUES / (x.shape[1] * total))
            keep = torch.rand(x.shape[0], generator=gen) < rate
            xs.append(x[keep])
            ys.append(step_labels(whole.segments, whole.labels, whole.length)[keep])
    return torch.cat(xs), torch.cat(ys)


def fit_linear(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    epochs: int,
    weight_decay: float,
    seed: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """A multinomial logistic regression of classes y (N,) on inputs x (N, D), fitted at once:
    full-batch Adam for `epochs` on standardized inputs, from a layer seeded with `seed` (torch's
    global generator untouched). Returns its weight (K, D) and bias (K,) in x's own units (the
    standardization folded back) and its final loss. Shared by the step and window refits."""
    x, y = x.to(device), y.to(device)
    mean, scale = x.mean(dim=0), x.std(dim=0) + 1e-6
    z = (x - mean) / scale
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        linear = torch.nn.Linear(x.shape[1], classes).to(device)
    optimizer = torch.optim.Adam(linear.parameters(), lr=REFIT_LR, weight_decay=weight_decay)
    for _ in range(epochs):
        optimizer.zero_grad()
        F.cross_entropy(linear(z), y).backward()
        optimizer.step()
    with torch.no_grad():
        loss = F.cross_entropy(linear(z), y)
        weight = linear.weight / scale  # undo the standardization
        bias = linear.bias - (weight * mean).sum(dim=1)
    return weight, bias, float(loss)


def refit_step_head(model: TalNet, data: TrainingData, config: Config) -> float:
    """Fit the per-step head anew on all training steps (full batch, `step_refit_epochs` of
    Adam on standardized inputs) and write it into every branch; returns the final loss."""
    x, y = step_rows(model, data, config)
    device = next(model.parameters()).device
    t = config.train
    weight, bias, loss = fit_linear(
        x, y, model.num_classes + 1, t.step_refit_epochs, t.step_refit_weight_decay, t.seed, device
    )
    with torch.no_grad():
        # late fusion averages the branches' logits: each branch gets its columns x branches
        n, col = len(model.branches), 0
        for branch in model.branches.values():
            head = branch.step.linear
            width = head.in_features
            head.weight.copy_(n * weight[:, col : col + width])
            head.bias.copy_(bias)
            col += width
    return loss
