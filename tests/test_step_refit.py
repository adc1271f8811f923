"""train.step_refit_epochs: the per-step head fitted again on every training step at once."""

import pytest
import torch
import torch.nn.functional as F
from model_factory import seeded_model, tiny_config, tiny_data, training_data

from talnet.config import edit_config
from talnet.errors import TalnetError
from talnet.model.stream import fuse
from talnet.train.loop import FitOptions, fit
from talnet.train.step_refit import STEP_REFIT_LOSS, refit_step_head, step_rows

STEP_HEAD = {"model": {"step_classifier": True, "step_input": "features"}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return training_data(tiny_data(tmp_path_factory.mktemp("tiny"), train=4))


def _model_loss(model, data, config) -> float:
    """Cross-entropy of the model's own fused per-step logits over every training step."""
    x, y = step_rows(model, data, config)  # tiny data: every step, none subsampled
    assert len(y) == sum(v.length for v in data.videos)
    logits, col = [], 0
    with torch.no_grad():
        for branch in model.branches.values():
            width = branch.step.linear.in_features
            logits.append((branch.step.linear(x[:, col : col + width]),))
            col += width
        return float(F.cross_entropy(fuse(logits)[0], y))


def test_refit_lowers_the_step_loss_and_folds_exactly_into_the_branches(data):
    config = edit_config(tiny_config(1), {**STEP_HEAD, "train": {"step_refit_epochs": 150}})
    model = seeded_model(data, config)
    before = _model_loss(model, data, config)
    returned = refit_step_head(model, data, config)
    after = _model_loss(model, data, config)
    assert after < 0.5 * before  # an untrained head against its fitted optimum
    # the standardization and the branches' averaging folded back: the model computes the fit
    assert after == pytest.approx(returned, rel=1e-4, abs=1e-5)


def test_fit_refits_after_the_last_epoch_only_when_asked(data):
    records = []
    opts = FitOptions(progress=False, log_fn=lambda _m: None,
                      on_epoch=lambda r, *_: records.append(r))  # fmt: skip
    for epochs in (0, 60):
        config = edit_config(tiny_config(2), {**STEP_HEAD, "train": {"step_refit_epochs": epochs}})
        model = seeded_model(data, config)
        fit(model, data, config, opts)
        assert [STEP_REFIT_LOSS in r for r in records[-2:]] == [False, epochs > 0]
    assert records[-1][STEP_REFIT_LOSS] == pytest.approx(_model_loss(model, data, config), rel=1e-3)


def test_refit_needs_a_step_head_on_the_features():
    with pytest.raises(TalnetError, match="step_refit_epochs"):
        edit_config(tiny_config(1), {"train": {"step_refit_epochs": 10}})
    with pytest.raises(TalnetError, match="step_refit_epochs"):
        edit_config(tiny_config(1), {"model": {"step_classifier": True},
                                     "train": {"step_refit_epochs": 10}})  # fmt: skip


def test_the_refits_l2_comes_from_the_config_and_shrinks_the_head(data):
    norms, losses = [], []
    for decay in (1e-4, 1.0):
        edits = {**STEP_HEAD, "train": {"step_refit_epochs": 150, "step_refit_weight_decay": decay}}
        config = edit_config(tiny_config(1), edits)
        model = seeded_model(data, config)
        losses.append(refit_step_head(model, data, config))
        norms.append(sum(float(b.step.linear.weight.norm()) for b in model.branches.values()))
    # a strong L2 trades fit for smaller weights: both move, the same way
    assert norms[1] < 0.5 * norms[0]
    assert losses[1] > losses[0]
    with pytest.raises(TalnetError, match="step_refit_weight_decay"):
        edit_config(tiny_config(1), {**STEP_HEAD, "train": {"step_refit_weight_decay": -1.0}})
