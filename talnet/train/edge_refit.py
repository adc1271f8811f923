"""Fitting the edge regressor after training (model.edge_regressor, docs/design.md §3).

Its training windows are drawn around every training instance: train.edge_refit_samples per
instance, each edge moved by a uniform draw of up to train.edge_refit_jitter x the instance's
length (seeded), as the second stage's refined detections sit around their instances. The
targets are the offsets that bring each window's edges back onto its instance's, in units of
the window's length; the inputs read the step head's and the window classifier's signals of the
instance's class, so both must be fitted first. A ridge regression on standardized inputs,
solved at once, the standardization folded back into the layer.
"""

from __future__ import annotations

import torch

from talnet.config import Config
from talnet.data.dataset import TrainingData
from talnet.model.talnet import TalNet

EDGE_REFIT_ERROR = "edge_refit_error"  # the fit's mean |offset| error, in the last epoch's log


def jittered_windows(
    segments: torch.Tensor, samples: int, jitter: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`samples` windows (N, 2) around each instance of segments (G, 2): each edge moved by
    up to `jitter` x the instance's length; those at least one step long, with the index (N,)
    of their instance."""
    which = torch.arange(len(segments)).repeat_interleave(samples)
    base = segments[which].double()
    span = (base[:, 1] - base[:, 0])[:, None]
    moves = (torch.rand(len(base), 2, generator=generator, dtype=torch.float64) * 2 - 1) * jitter
    windows = base + moves * span
    keep = windows[:, 1] - windows[:, 0] >= 1.0
    return windows[keep].float(), which[keep]


def edge_rows(
    model: TalNet, data: TrainingData, config: Config
) -> tuple[torch.Tensor, torch.Tensor]:
    """The edge regressor's inputs (N, F) and targets (N, 2) over every training video's
    jittered windows."""
    head = model.edge_head
    assert head is not None
    tcfg = config.train
    gen = torch.Generator().manual_seed(tcfg.seed)
    xs, ys = [], []
    with torch.no_grad():
        for i, video in enumerate(data.videos):
            whole = data.crop(i, video.length, gen)  # the whole video: nothing drawn
            if not len(whole.segments):
                continue
            windows, which = jittered_windows(
                whole.segments, tcfg.edge_refit_samples, tcfg.edge_refit_jitter, gen
            )
            if not len(windows):
                continue
            signals = model.edge_signals(model.video_rows(whole.features))
            xs.append(head.inputs(signals, windows, whole.labels[which].long()))
            span = (windows[:, 1] - windows[:, 0])[:, None]
            ys.append((whole.segments[which] - windows) / span)
    width = head.linear.in_features
    if not xs:
        return torch.zeros(0, width), torch.zeros(0, 2)
    return torch.cat(xs), torch.cat(ys)


def fit_ridge(
    x: torch.Tensor, y: torch.Tensor, ridge: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Ridge regression of y (N, K) on x (N, F), the penalty on standardized inputs' weights
    and not on the intercept: (weight (K, F), bias (K,)) on the raw inputs, and the mean
    absolute error of the fit."""
    x, y = x.double(), y.double()
    mean, std = x.mean(dim=0), x.std(dim=0, correction=0).clamp(min=1e-6)
    z = (x - mean) / std
    zm, ym = z.mean(dim=0), y.mean(dim=0)
    zc = z - zm
    gram = zc.T @ zc + ridge * torch.eye(z.shape[1], dtype=z.dtype)
    coef = torch.linalg.solve(gram, zc.T @ (y - ym))  # (F, K)
    error = float((zc @ coef + ym - y).abs().mean())
    weight = (coef / std[:, None]).T  # (K, F)
    bias = ym - (zm * std + mean) @ (coef / std[:, None])
    return weight.float(), bias.float(), error


def refit_edge_head(model: TalNet, data: TrainingData, config: Config) -> float:
    """Fit the edge regressor on the training videos' jittered instance windows (the step head
    and the window classifier as they are now); returns the fit's mean |offset| error (0 and
    no move when there is no instance)."""
    head = model.edge_head
    if head is None:
        raise ValueError("the model has no edge regressor (model.edge_regressor)")
    x, y = edge_rows(model, data, config)
    with torch.no_grad():
        if not len(x):
            head.linear.weight.zero_()
            head.linear.bias.zero_()
            return 0.0
        weight, bias, error = fit_ridge(x, y, config.train.edge_refit_ridge)
        head.linear.weight.copy_(weight.to(head.linear.weight.device))
        head.linear.bias.copy_(bias.to(head.linear.bias.device))
    return error
