"""Batched training (train.videos_per_batch): a batch means the mean of its videos' losses."""

import json

import pytest
import torch
from model_factory import TINY_MODEL, tiny_config, tiny_data

from talnet.config import Config, edit_config
from talnet.data.dataset import Crop, TrainingData
from talnet.errors import TalnetError
from talnet.io.annotations import clip_for_training, load_ground_truth
from talnet.io.features import read_meta
from talnet.model.losses import TOTAL_LOSS
from talnet.model.talnet import TalNet
from talnet.model.targets import GroundTruthSteps
from talnet.train.distributed import Distributed
from talnet.train.epoch import Stepper, steps_per_epoch
from talnet.train.loop import FitOptions, train

QUIET = FitOptions(progress=False, log_fn=lambda _m: None)


def _deterministic() -> Config:
    """A config whose training pass draws nothing at random: every labelled anchor and
    proposal is taken (batches larger than the pools), no jitter, no dropout."""
    cfg = Config()
    for key, value in TINY_MODEL.items():
        setattr(cfg.model, key, value)
    cfg.model.step_classifier = True
    cfg.model.video_classifier = True
    cfg.train.spn_batch = 100_000
    cfg.train.cls_batch = 100_000
    cfg.train.input_dropout = 0.0
    return cfg


def _video(length: int, seed: int) -> tuple[dict[str, torch.Tensor], GroundTruthSteps]:
    gen = torch.Generator().manual_seed(seed)
    feats = {"rgb": torch.randn(length, 6, generator=gen), "flow": torch.randn(length, 5)}
    gt = GroundTruthSteps(torch.tensor([[4.0, 11.0], [20.0, 27.0]]), torch.tensor([1, 2]))
    return feats, gt


def test_a_batch_of_identical_videos_has_the_loss_of_one():
    torch.manual_seed(0)
    net = TalNet({"rgb": 6, "flow": 5}, 2, _deterministic()).train()
    feats, gt = _video(40, 0)
    _, one = net(feats, gt, torch.Generator().manual_seed(0))
    stacked = {s: torch.stack([x] * 3) for s, x in feats.items()}
    proposals, three = net(stacked, [gt] * 3, torch.Generator().manual_seed(0))
    assert len(proposals) == 3
    assert set(one) == set(three) and len(one) == 7  # four stage terms, video, step, total
    for name in one:
        assert torch.allclose(one[name], three[name], rtol=1e-5, atol=1e-6), name


def test_a_batch_of_different_videos_has_the_mean_loss_and_gradient():
    torch.manual_seed(0)
    net = TalNet({"rgb": 6, "flow": 5}, 2, _deterministic()).train()
    videos = [_video(40, seed) for seed in (1, 2)]
    singles, grads = [], []
    for feats, gt in videos:
        net.zero_grad()
        _, losses = net(feats, gt, torch.Generator().manual_seed(0))
        losses[TOTAL_LOSS].backward()
        singles.append(losses[TOTAL_LOSS].detach())
        grads.append([p.grad.clone() for p in net.parameters()])
    net.zero_grad()
    stacked = {s: torch.stack([v[0][s] for v in videos]) for s in videos[0][0]}
    _, batch = net(stacked, [v[1] for v in videos], torch.Generator().manual_seed(0))
    batch[TOTAL_LOSS].backward()
    assert torch.allclose(batch[TOTAL_LOSS], (singles[0] + singles[1]) / 2, rtol=1e-5)
    for p, g0, g1 in zip(net.parameters(), *grads, strict=True):
        assert torch.allclose(p.grad, (g0 + g1) / 2, rtol=1e-4, atol=1e-6)


def test_a_step_over_crops_of_different_lengths_averages_their_gradients():
    # Crops of other lengths cannot share a forward pass; their gradients add up, weighted by
    # their share of the batch, so the step is the same as one on the mean loss.
    config = _deterministic()
    torch.manual_seed(0)
    net = TalNet({"rgb": 6, "flow": 5}, 2, config).train()
    crops = []
    for length, seed in ((40, 1), (40, 2), (56, 3)):
        feats, gt = _video(length, seed)
        crops.append(Crop(f"v{seed}", feats, gt.segments, gt.labels))
    expected = []
    for crop in crops:
        net.zero_grad()
        gt = GroundTruthSteps(crop.segments, crop.labels)
        net(crop.features, gt, torch.Generator())[1][TOTAL_LOSS].backward()
        expected.append([p.grad.clone() for p in net.parameters()])
    stepper = Stepper.build(net, config, "cpu", False, Distributed())
    net.zero_grad()
    stepper.optimizer.step = lambda: None  # keep the weights: look at the gradients
    values = stepper._step(_Data(crops), [0, 1, 2], config, 1e-3, (*net.loss_names, TOTAL_LOSS))
    for p, *gs in zip(net.parameters(), *expected, strict=True):
        assert torch.allclose(p.grad, sum(gs) / 3, rtol=1e-4, atol=1e-6)
    assert torch.isfinite(values).all() and values[-1] > 0


class _Data:
    """Crops handed out as they are (TrainingData's interface for `Stepper._step`)."""

    def __init__(self, crops: list[Crop]):
        self.crops = crops

    def crop(self, index: int, max_steps: int, generator: torch.Generator) -> Crop:
        return self.crops[index]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("tiny"), train=6)


def test_videos_per_batch_takes_fewer_steps_per_epoch_and_learns(data, tmp_path):
    config = edit_config(tiny_config(8), {"train": {"videos_per_batch": 4, "lr": 3e-3}})
    train(data / "annotations.json", data / "features", tmp_path / "run", config, options=QUIET)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().split("\n")
           if line]  # fmt: skip
    assert [r["steps"] for r in log] == [2] * 8  # 6 videos, 4 a step
    assert log[-1]["loss"] < log[0]["loss"]
    gt = clip_for_training(load_ground_truth(data / "annotations.json", "validation"))
    training = TrainingData(gt, data / "features", read_meta(data / "features"))
    assert steps_per_epoch(len(training), config, Distributed()) == 2


def test_videos_per_batch_must_be_positive():
    with pytest.raises(TalnetError, match="videos_per_batch"):
        edit_config(tiny_config(1), {"train": {"videos_per_batch": 0}})
