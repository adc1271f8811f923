"""Fitting the window classifier after training (model.window_classifier, docs/design.md §3).

Its training windows are the model's anchors at every position, as a sliding-window detector's
would be: each anchor scale s every max(1, s / 4) steps of every training video, labelled with
the class of the instance it overlaps by tIoU > 0.5 (else background, of which a tenth is kept,
seeded). Inputs standardized, full-batch Adam, the standardization folded back into the layer.
"""

from __future__ import annotations

import torch

from talnet.config import Config
from talnet.data.dataset import TrainingData
from talnet.model.matching import pairwise_tiou
from talnet.model.talnet import TalNet
from talnet.train.step_refit import fit_linear

WINDOW_REFIT_LOSS = "window_refit_loss"  # the fit's final loss, in the last epoch's log record
FOREGROUND_IOU = 0.5
BACKGROUND_KEPT = 0.1
MAX_ROWS = 300_000  # windows kept for the fit
MAX_VALUES = 500_000_000  # rows x input width kept (2 GB of float32: 2048-d I3D x 8 parts)
LABEL_CHUNK = 8192  # windows labelled at a time


def anchor_windows(length: int, scales: list[float]) -> torch.Tensor:
    """Every anchor scale's windows (N, 2) in steps (-0.5 convention), every max(1, s / 4)
    steps, those that fit in the video."""
    rows = []
    for s in sorted({int(round(s)) for s in scales}):
        if 1 <= s <= length:
            starts = torch.arange(0, length - s + 1, max(1, s // 4), dtype=torch.float32)
            rows.append(torch.stack([starts - 0.5, starts + s - 0.5], dim=1))
    return torch.cat(rows) if rows else torch.zeros(0, 2)


def window_labels(
    windows: torch.Tensor, segments: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Each window's class (N,): that of the instance it overlaps most (the first listed on a
    tie), if by tIoU > 0.5, else 0 (background). Windows go in start order, LABEL_CHUNK at a
    time, each chunk against the instances that reach into its span only: memory bounded on a
    day-long video with thousands of instances."""
    out = torch.zeros(len(windows), dtype=torch.long)
    if not len(segments) or not len(windows):
        return out
    segments, labels = segments.double(), labels.long()
    by_start = torch.argsort(windows[:, 0], stable=True)
    for lo in range(0, len(windows), LABEL_CHUNK):
        rows = by_start[lo : lo + LABEL_CHUNK]
        chunk = windows[rows].double()
        near = (segments[:, 0] < chunk[:, 1].max()) & (segments[:, 1] > chunk[:, 0].min())
        if not near.any():
            continue
        best, which = pairwise_tiou(chunk, segments[near]).max(dim=1)
        out[rows] = torch.where(best > FOREGROUND_IOU, labels[near][which], 0)
    return out


def window_rows(
    model: TalNet, data: TrainingData, config: Config
) -> tuple[torch.Tensor, torch.Tensor]:
    """The window classifier's inputs (N, P x D) and classes (N,) over every training video's
    anchor windows, background kept at BACKGROUND_KEPT, all subsampled (seeded) to at most
    MAX_ROWS rows and MAX_VALUES numbers."""
    head = model.window_head
    assert head is not None
    gen = torch.Generator().manual_seed(config.train.seed)
    picked = []
    for i, video in enumerate(data.videos):
        windows = anchor_windows(video.length, config.model.anchors)
        whole = data.crop(i, video.length, gen)  # the whole video: nothing drawn
        y = window_labels(windows, whole.segments, whole.labels)
        keep = (y > 0) | (torch.rand(len(y), generator=gen) < BACKGROUND_KEPT)
        picked.append((i, windows[keep], y[keep]))
    total = max(sum(len(w) for _, w, _ in picked), 1)
    rate = min(1.0, MAX_ROWS / total, MAX_VALUES / (head.linear.in_features * total))
    xs, ys = [], []
    with torch.no_grad():
        for i, windows, y in picked:
            keep = torch.rand(len(y), generator=gen) < rate
            if not keep.any():
                continue
            whole = data.crop(i, data.videos[i].length, gen)
            x = torch.cat(list(model.branch_inputs(whole.features).values()), dim=-1)[0]
            xs.append(head.inputs(x, windows[keep]))
            ys.append(y[keep])
    return torch.cat(xs), torch.cat(ys)


def refit_window_head(model: TalNet, data: TrainingData, config: Config) -> float:
    """Fit the window classifier on the training videos' anchor windows (full batch,
    `train.window_refit_epochs` of Adam, L2 `train.window_refit_weight_decay`, on
    standardized inputs); returns the final loss."""
    head = model.window_head
    if head is None:
        raise ValueError("the model has no window classifier (model.window_classifier)")
    x, y = window_rows(model, data, config)
    weight, bias, loss = fit_linear(
        x, y, head.linear.out_features, config.train.window_refit_epochs,
        config.train.window_refit_weight_decay, config.train.seed, head.linear.weight.device,
    )  # fmt: skip
    with torch.no_grad():
        head.linear.weight.copy_(weight)
        head.linear.bias.copy_(bias)
    return loss
