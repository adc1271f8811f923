"""Fitting the edge regressor after training (model.edge_regressor, docs/design.md §3).

Its training windows are drawn around every training instance: train.edge_refit_samples per
instance, each edge moved by a uniform draw of up to train.edge_refit_jitter x the instance's
length (seeded), as the second stage's refined detections sit around their instances. The
targets are the offsets that bring each window's edges back onto its instance's, in units of
the window's length; the inputs read the step head's and the window classifier's signals of the
instance's class, so both must be fitted first. A ridge regression on standardized inputs,
solved at once, the standardization folded back into the layer; with model.edge_stages > 1,
each stage in turn, on the same windows as the stages before it moved them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from talnet.config import Config
from talnet.data.dataset import TrainingData
from talnet.model.edge_head import EdgeRegressor
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


@dataclass
class EdgeWindows:
    """One training video's windows for the edge regressor: its signals (talnet.model.edge_head),
    the windows (N, 2) as drawn, each one's class column (N,) and its instance's edges (N, 2)."""

    signals: list[torch.Tensor]
    windows: torch.Tensor
    columns: torch.Tensor
    truth: torch.Tensor


def edge_windows(model: TalNet, data: TrainingData, config: Config) -> list[EdgeWindows]:
    """Every training video's jittered instance windows, with the signals read once for all of
    the cascade's stages."""
    tcfg = config.train
    gen = torch.Generator().manual_seed(tcfg.seed)
    out = []
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
            columns = whole.labels[which].long()
            out.append(EdgeWindows(signals, windows, columns, whole.segments[which].float()))
    return out


def edge_rows(
    head: EdgeRegressor, videos: list[EdgeWindows], windows: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (N, F) and targets (N, 2) of the videos' windows where they are now (`windows`,
    one (N_i, 2) per video): the offsets that bring them onto their instances, in units of the
    length that `EdgeRegressor.move` scales offsets by."""
    xs, ys = [], []
    with torch.no_grad():
        for video, at in zip(videos, windows, strict=True):
            xs.append(head.inputs(video.signals, at, video.columns))
            span = (at[:, 1] - at[:, 0]).clamp(min=1.0)[:, None]
            ys.append((video.truth - at) / span)
    if not xs:
        return torch.zeros(0, head.linear.in_features), torch.zeros(0, 2)
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


def fit_stages(head: EdgeRegressor, videos: list[EdgeWindows], ridge: float) -> float:
    """Fit the head's stages in turn on the videos' windows, each on them as the stages before
    it moved them (no move where there are none); returns the last stage's mean |offset| error
    on them (0 without windows)."""
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias.zero_()
    if not videos:
        return 0.0
    windows = [video.windows for video in videos]
    error = 0.0
    for stage in range(head.stages):
        x, y = edge_rows(head, videos, windows)
        weight, bias, error = fit_ridge(x, y, ridge)
        head.set_stage(stage, weight, bias)
        if stage + 1 < head.stages:
            windows = [
                head.move(v.signals, at, v.columns, stage)
                for v, at in zip(videos, windows, strict=True)
            ]
    return error


def refit_edge_head(model: TalNet, data: TrainingData, config: Config) -> float:
    """Fit the edge regressor on the training videos' jittered instance windows (the step head
    and the window classifier as they are now); returns its last stage's mean |offset| error
    (0 and no move when there is no instance)."""
    head = model.edge_head
    if head is None:
        raise ValueError("the model has no edge regressor (model.edge_regressor)")
    return fit_stages(head, edge_windows(model, data, config), config.train.edge_refit_ridge)
