"""The shipped presets' anchors cover their configured range of action lengths without gaps."""

import math

import pytest
import torch

from talnet.config import load_config, preset_names
from talnet.model.anchors import best_anchor_tiou


def test_best_anchor_tiou_hand_case():
    got = best_anchor_tiou(torch.tensor([4.0, 8.0]), torch.tensor([4.0, 6.0, 16.0, 2.0]))
    assert got.tolist() == [1.0, 6 / 8, 0.5, 0.5]


@pytest.mark.parametrize("name", [n for n in preset_names() if n != "anet13"])
def test_every_length_between_the_extreme_anchors_has_a_positive_anchor(name):
    anchors = torch.tensor(load_config(name).model.anchors)
    lengths = torch.exp(torch.linspace(math.log(anchors.min()), math.log(anchors.max()), 500))
    # the proposal stage's positive threshold is tIoU 0.7: a centred anchor reaches it everywhere
    assert best_anchor_tiou(anchors, lengths).min() >= 0.7


def test_thumos_cpu_anchors_reach_from_under_a_second_to_half_a_minute():
    config = load_config("thumos14_cpu")
    seconds_per_step = 4 / 30  # THUMOS'14's I3D grid: stride 4 frames at 30 fps
    anchors = torch.tensor(config.model.anchors) * seconds_per_step
    assert anchors.min() <= 1.0 and anchors.max() >= 30.0
