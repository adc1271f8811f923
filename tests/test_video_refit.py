"""train.video_refit_iterations: the video-level classifier fitted again on every training video
at once; model.video_hidden 0: a linear video head."""

import pytest
import torch
from model_factory import seeded_model, tiny_config, tiny_data, training_data

from talnet.config import edit_config
from talnet.errors import TalnetError
from talnet.model.video_head import video_target
from talnet.train.loop import FitOptions, fit
from talnet.train.video_refit import VIDEO_REFIT_LOSS, refit_video_head


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return training_data(tiny_data(tmp_path_factory.mktemp("tiny"), train=6))


def _config(hidden: int, iterations: int = 100, epochs: int = 1):
    return edit_config(tiny_config(epochs), {
        "model": {"video_classifier": True, "video_hidden": hidden},
        "train": {"video_refit_iterations": iterations},
    })  # fmt: skip


def _video_loss(model, data) -> float:
    """Mean cross-entropy of the model's own video probabilities (inference path) over the
    training videos, against each video's class distribution."""
    terms = []
    gen = torch.Generator()
    for i, video in enumerate(data.videos):
        whole = data.crop(i, video.length, gen)
        with torch.no_grad():
            probs = model.video_probabilities(whole.features)
        target = video_target(whole.labels, model.num_classes)
        terms.append(-(target * probs.clamp_min(1e-12).log()).sum())
    return float(torch.stack(terms).mean())


@pytest.mark.parametrize("hidden", [0, 16])
def test_refit_lowers_the_video_loss_and_folds_exactly_into_the_head(data, hidden):
    config = _config(hidden)
    model = seeded_model(data, config).eval()
    if hidden == 0:  # a logistic regression on the pooled features
        assert [type(m).__name__ for m in model.video_head.net] == ["Linear"]
    before = _video_loss(model, data)
    returned = refit_video_head(model, data, config)
    after = _video_loss(model, data)
    assert after < 0.5 * before
    # the standardization folded into the first layer: inference computes the fitted head
    assert after == pytest.approx(returned, rel=1e-3, abs=1e-4)


def test_fit_refits_after_the_last_epoch_only_when_asked(data):
    records = []
    opts = FitOptions(progress=False, log_fn=lambda _m: None,
                      on_epoch=lambda r, *_: records.append(r))  # fmt: skip
    for iterations in (0, 50):
        config = _config(0, iterations, epochs=2)
        model = seeded_model(data, config).eval()
        fit(model, data, config, opts)
        assert [VIDEO_REFIT_LOSS in r for r in records[-2:]] == [False, iterations > 0]
    assert records[-1][VIDEO_REFIT_LOSS] == pytest.approx(_video_loss(model.eval(), data), rel=1e-3)


def test_refit_needs_a_video_classifier():
    with pytest.raises(TalnetError, match="video_refit_iterations"):
        edit_config(tiny_config(1), {"train": {"video_refit_iterations": 10}})
    with pytest.raises(TalnetError, match="video_hidden"):
        edit_config(tiny_config(1), {"model": {"video_classifier": True, "video_hidden": -1}})
