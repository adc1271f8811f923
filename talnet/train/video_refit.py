"""Refitting the video-level classifier after training (train.video_refit_iterations,
docs/design.md §3).

A video's class is a property of its pooled features, and there is one example per video: a
few hundred noisy steps of Adam on a few hundred videos leave the head far from what the same
head fitted at once reaches (measured on ActivityNet-shaped data where the signal per step is
weak: a logistic regression on the mean and max features beats the jointly trained head).
Refitting solves it at once: every training video's pooled inputs, standardized, the head's
own architecture fitted by L-BFGS from a seeded start with an L2 penalty of |W|^2 / 2 over the
number of videos (a logistic regression's usual C = 1), then the standardization folded into
its first layer so the model's forward pass is unchanged in form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from talnet.config import Config
from talnet.data.dataset import TrainingData
from talnet.model.talnet import TalNet
from talnet.model.video_head import VideoClassifier, video_target

VIDEO_REFIT_LOSS = "video_refit_loss"  # the refit's final loss, in the last epoch's log record


def video_rows(model: TalNet, data: TrainingData, config: Config) -> tuple[torch.Tensor, ...]:
    """Every training video with an instance: the head's pooled inputs (N, 2C), all branches
    side by side as the head sees them, and its class distribution (N, K)."""
    gen = torch.Generator().manual_seed(config.train.seed)
    xs, ys = [], []
    with torch.no_grad():
        for i, video in enumerate(data.videos):
            whole = data.crop(i, video.length, gen)  # the whole video: nothing drawn
            if whole.labels.numel() == 0:
                continue
            inputs = model.branch_inputs(whole.features)
            xs.append(VideoClassifier.pool(torch.cat(list(inputs.values()), dim=-1))[0])
            ys.append(video_target(whole.labels, model.num_classes))
    if not xs:
        raise ValueError("no training video has an instance to refit the video classifier on")
    return torch.stack(xs).float(), torch.stack(ys)


def refit_video_head(model: TalNet, data: TrainingData, config: Config) -> float:
    """Fit the video-level classifier anew on all training videos (full batch, L-BFGS for
    `video_refit_iterations`, standardized inputs) and write it into the model; returns the
    final cross-entropy."""
    head = model.video_head
    if head is None:
        raise ValueError("the model has no video-level classifier to refit")
    device = next(model.parameters()).device
    x, y = (t.to(device) for t in video_rows(model, data, config))
    mean, scale = x.mean(dim=0), x.std(dim=0, correction=0) + 1e-6
    z = (x - mean) / scale
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        fresh = VideoClassifier(1, model.num_classes, config.model.video_hidden).net
        fresh[0] = torch.nn.Linear(x.shape[1], fresh[0].out_features)
    net = fresh.to(device).eval()  # no dropout: L-BFGS needs one objective
    weights = [m.weight for m in net if isinstance(m, torch.nn.Linear)]
    optimizer = torch.optim.LBFGS(
        net.parameters(), lr=1.0, max_iter=config.train.video_refit_iterations,
        tolerance_grad=1e-7, tolerance_change=1e-10, history_size=20,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        ce = -(y * F.log_softmax(net(z), dim=1)).sum(dim=1).mean()
        loss = ce + 0.5 * sum((w**2).sum() for w in weights) / len(z)
        loss.backward()
        return loss

    optimizer.step(objective)
    with torch.no_grad():
        loss = -(y * F.log_softmax(net(z), dim=1)).sum(dim=1).mean()
        first = net[0]
        weight = first.weight / scale  # undo the standardization
        first.bias.sub_((weight * mean).sum(dim=1))
        first.weight.copy_(weight)
        head.net.load_state_dict(net.state_dict())
    return float(loss)
