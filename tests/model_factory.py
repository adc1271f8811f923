"""Tiny synthetic data and a tiny config, so training tests take seconds."""

from __future__ import annotations

from pathlib import Path

import torch

from talnet.config import Config, load_config
from talnet.data.dataset import TrainingData
from talnet.data.synth import SynthConfig, make_synthetic
from talnet.io.annotations import clip_for_training, load_ground_truth
from talnet.io.features import read_meta
from talnet.model.talnet import TalNet

# The smallest TalNet widths (3 anchor scales) for model unit tests on random features.
TINY_MODEL = dict(
    anchors=[2, 4, 8],
    spn_reduce_dim=8,
    tower_dim=4,
    soi_reduce_dim=4,
    soi_bins=4,
    fc_dim=16,
    dropout=0.0,
)


def tiny_data(folder: Path, train: int = 4, test: int = 2, seed: int = 0) -> Path:
    """Short synthetic videos (20-40 s, 8-d streams, 3 classes): OUT/annotations.json, features."""
    cfg = SynthConfig(duration_s=(20.0, 40.0), instances=(2, 4), length_clip_s=(0.5, 6.0))
    return make_synthetic(
        folder, seed=seed, videos_train=train, videos_test=test, classes=3, dim=8, config=cfg,
        progress=False,
    )  # fmt: skip


def tiny_config(epochs: int = 2) -> Config:
    """cpu_fast with small anchors and widths, one crop per video."""
    cfg = load_config("cpu_fast")
    m, p, t, d = cfg.model, cfg.proposals, cfg.train, cfg.detect
    m.anchors = [2, 4, 8, 16, 32]
    m.spn_reduce_dim, m.tower_dim, m.soi_reduce_dim, m.soi_bins, m.fc_dim = 8, 8, 8, 4, 16
    t.epochs, t.windows_per_video, t.max_steps, t.warmup_epochs = epochs, 1, 128, 0.0
    p.pre_nms_train, p.post_nms_train = 200, 50
    d.window_steps = 256
    return cfg


def training_data(folder: Path) -> TrainingData:
    """The training videos (subset "validation") of a synthetic folder, as fit reads them."""
    gt = clip_for_training(load_ground_truth(folder / "annotations.json", "validation"))
    return TrainingData(gt, folder / "features", read_meta(folder / "features"))


def seeded_model(data: TrainingData, config: Config) -> TalNet:
    """A TalNet for `data`'s streams and classes, initialized from seed 0."""
    torch.manual_seed(0)
    dims = dict(zip(data.meta.streams, data.meta.dims, strict=True))
    return TalNet(dims, len(data.classes), config)
