"""The per-step class head: its labels, its contrast votes, and its place in the model."""

import pytest
import torch
from model_factory import TINY_MODEL

from talnet.config import Config, ModelConfig, edit_config, load_config
from talnet.errors import TalnetError
from talnet.model.step_head import STEP_LOSS, StepClassifier, contrast_scores, step_labels
from talnet.model.talnet import TalNet
from talnet.model.targets import GroundTruthSteps


def test_labels_mark_the_steps_inside_each_segment():
    labels = step_labels(torch.tensor([[2.0, 4.0], [6.5, 8.0]]), torch.tensor([3, 1]), 10)
    assert labels.tolist() == [0, 0, 3, 3, 3, 0, 0, 1, 1, 0]


def test_contrast_is_a_plateau_against_its_surroundings():
    probs = torch.zeros(40, 2)
    probs[10:20, 0] = 0.8  # class 0: a plateau over steps 10..19
    probs[:, 1] = 0.5  # class 1: flat everywhere, no contrast anywhere
    segments = torch.tensor([[[10.0, 19.0], [12.0, 17.0], [0.0, 3.0]]]).expand(2, 3, 2)
    votes = contrast_scores(probs, segments)
    assert torch.allclose(votes[0], torch.tensor([0.8, 0.0, 0.0]))  # part of a plateau: 0
    assert torch.allclose(votes[1], torch.zeros(3))
    # at the video's edge the side outside it is left out, not counted as background
    edge = torch.zeros(40, 1)
    edge[:10, 0] = 0.9
    assert torch.allclose(contrast_scores(edge, torch.tensor([[[0.0, 9.0]]])), torch.tensor(0.9))



def test_contrast_outside_weighs_the_surroundings():
    # a plateau at 0.8 over steps 10..29 on a floor of 0.2: the exact segment, one spilling 4
    # steps past each edge, and one inside the plateau
    probs = torch.full((60, 1), 0.2)
    probs[10:30, 0] = 0.8
    segments = torch.tensor([[[10.0, 29.0], [6.0, 33.0], [14.0, 25.0]]])
    plain = contrast_scores(probs, segments)
    strict = contrast_scores(probs, segments, outside=1.5)
    spill_inner = (20 * 0.8 + 8 * 0.2) / 28
    assert torch.allclose(plain[0], torch.tensor([0.6, spill_inner - 0.2, 0.0]))
    assert torch.allclose(strict[0], torch.tensor([0.5, spill_inner - 0.3, 0.0]))
    # outside > 1 ranks the spilling segment lower against the exact one
    assert strict[0, 1] / strict[0, 0] < plain[0, 1] / plain[0, 0] - 0.05


def test_logprob_vote_is_the_linear_classifier_of_the_window_mean():
    # a linear head's per-step probabilities: the "logprobs" vote of a window is the softmax of
    # the head applied to the window's mean input, for the class its row reads
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=gen)
    weight, bias = torch.randn(4, 6, generator=gen), torch.randn(4, generator=gen)
    probs = torch.softmax(x @ weight.T + bias, dim=-1)  # (T, K), column 0 = background
    segments = torch.tensor([[[5.0, 24.0]], [[10.0, 39.0]], [[0.0, 49.0]]])  # rows: classes 1-3
    votes = contrast_scores(
        probs, segments, outside=0.0, columns=torch.tensor([1, 2, 3]), vote="logprobs"
    )
    for row, (lo, hi) in enumerate([(5, 24), (10, 39), (0, 49)]):
        expected = torch.softmax(x[lo : hi + 1].mean(0) @ weight.T + bias, dim=-1)[row + 1]
        assert torch.isclose(votes[row, 0], expected, atol=1e-5)
    # the probability vote is the mean probability instead, and differs
    plain = contrast_scores(probs, segments, outside=0.0, columns=torch.tensor([1, 2, 3]))
    assert torch.isclose(plain[0, 0], probs[5:25, 1].mean())
    assert not torch.allclose(plain, votes, atol=1e-3)


def test_logprob_vote_contrasts_with_the_surroundings():
    # class 1 leads by a little on steps 20..39 and trails elsewhere: the exact segment keeps
    # its share, one inside the run scores 0 with outside 1 (its flanks are the same class)
    probs = torch.tensor([0.5, 0.2, 0.3]).repeat(60, 1)
    probs[20:40] = torch.tensor([0.3, 0.4, 0.3])
    votes = contrast_scores(
        probs, torch.tensor([[[20.0, 39.0], [24.0, 35.0]]]), columns=torch.tensor([1]),
        vote="logprobs",
    )  # fmt: skip
    assert torch.isclose(votes[0, 0], torch.tensor(0.4 - 0.2), atol=1e-5)
    assert votes[0, 1] == 0.0


def test_step_classifier_sees_centred_means():
    head = StepClassifier(2, 3, [3])
    fmap = torch.arange(10.0)[None, :, None].repeat(1, 1, 2)  # (1, T, D)
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias.zero_()
        head.linear.weight[1, 2] = 1.0  # class 1's logit = the 3-step mean of channel 0
        out = head(fmap)
    assert out.shape == (1, 10, 4)
    assert torch.allclose(out[0, 1:-1, 1], torch.arange(1.0, 9.0))
    assert torch.isclose(out[0, 0, 1], torch.tensor(0.5))  # (0 + 1) / 2 at the edge


def test_model_trains_the_step_head_and_uses_it_to_score():
    torch.manual_seed(0)
    model = ModelConfig(**TINY_MODEL, step_classifier=True)
    net = TalNet({"rgb": 6, "flow": 5}, 3, Config(model=model))
    feats = {"rgb": torch.randn(60, 6), "flow": torch.randn(60, 5)}
    gt = GroundTruthSteps(torch.tensor([[10.0, 30.0]]), torch.tensor([2]))
    _, losses = net(feats, gt, torch.Generator().manual_seed(0))
    assert losses[STEP_LOSS] > 0
    losses["loss"].backward()
    assert net.branches["flow"].step.linear.weight.grad.abs().sum() > 0
    net.eval()
    with torch.inference_mode():
        plain = net(feats)
        net.config.detect.step_score_weight = 1.0
        voted = net(feats)
    # with weight 1 a score is a contrast vote: in [0, 1] and not the classifier's
    assert ((voted.scores >= 0) & (voted.scores <= 1)).all()
    assert not torch.equal(plain.scores, voted.scores)


def test_unknown_step_vote_is_refused_by_name():
    with pytest.raises(TalnetError, match="bad config value: detect.step_vote"):
        edit_config(load_config("thumos14_cpu"), {"detect": {"step_vote": "mean"}})
