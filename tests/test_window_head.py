"""model.window_classifier: a linear classifier of window means, fitted after training."""

import pytest
import torch
from model_factory import seeded_model, tiny_config, tiny_data, training_data

from talnet.config import edit_config, load_config
from talnet.data.synth import SynthConfig, make_synthetic
from talnet.errors import TalnetError
from talnet.model.matching import pairwise_tiou
from talnet.model.window_head import WindowClassifier, window_bounds, window_means
from talnet.pipelines.ablate import VARIANTS, run_ablation
from talnet.train import window_refit
from talnet.train.loop import FitOptions, fit
from talnet.train.window_refit import (
    WINDOW_REFIT_LOSS,
    anchor_windows,
    refit_window_head,
    window_labels,
)

WINDOW_HEAD = {"model": {"window_classifier": True}, "train": {"window_refit_epochs": 150}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # short videos whose classes differ in their mean features (no shared appearance, little
    # noise or drift, no distractors): what a linear classifier of window means must learn
    cfg = SynthConfig(duration_s=(20.0, 40.0), instances=(2, 4), length_clip_s=(0.5, 4.0),
                      rgb_noise=0.3, flow_noise=0.3, rgb_drift=0.0, flow_drift=0.0,
                      rgb_shared=0.0, flow_shared=0.0, distractors_per_min=0.0)  # fmt: skip
    folder = make_synthetic(
        tmp_path_factory.mktemp("tiny"), seed=0, videos_train=4, videos_test=0, classes=3,
        dim=8, config=cfg, progress=False,
    )  # fmt: skip
    return training_data(folder)


def test_window_bounds_are_the_segment_and_half_its_length_on_each_side_clipped():
    segments = torch.tensor([[9.5, 19.5], [-0.5, 3.5], [95.5, 99.5], [50.0, 50.0]])
    bounds = window_bounds(segments, 100)
    assert bounds[0].tolist() == [[10, 20], [5, 10], [20, 25]]
    assert bounds[1].tolist() == [[0, 4], [0, 1], [4, 6]]  # nothing before: step 0 alone
    assert bounds[2].tolist() == [[96, 100], [94, 96], [99, 100]]  # nothing after: the last step
    assert bounds[3].tolist() == [[50, 51], [49, 50], [51, 52]]  # a point is one step long


def test_parts_are_fractions_of_the_length_from_the_segment_start():
    thirds_and_wide = torch.tensor([[0, 1 / 3], [1 / 3, 2 / 3], [2 / 3, 1], [-2, -0.5], [1.5, 3]])
    bounds = window_bounds(torch.tensor([[29.5, 35.5]]), 100, thirds_and_wide)[0]
    assert bounds.tolist() == [[30, 32], [32, 34], [34, 36], [18, 27], [39, 48]]


@pytest.mark.parametrize("parts", [None, [[0, 0.5], [0.5, 1], [-2, -0.5], [1.5, 3]]])
def test_logits_from_prefix_sums_equal_the_linear_layer_on_the_means(parts):
    torch.manual_seed(0)
    head = WindowClassifier(6, 4) if parts is None else WindowClassifier(6, 4, parts)
    torch.nn.init.normal_(head.linear.weight)
    x = torch.randn(300, 6)
    starts = torch.randint(-1, 290, (50,)).float()
    segments = torch.stack([starts - 0.5, starts + torch.randint(0, 80, (50,)) + 0.5], 1)
    direct = head.linear(head.inputs(x, segments))
    summed = head.logits(head.step_projections(x), segments)
    torch.testing.assert_close(summed, direct, rtol=1e-4, atol=1e-4)
    # and the means are the rows' means over each range
    means = window_means(x, torch.tensor([[3, 7]]))
    torch.testing.assert_close(means[0], x[3:7].mean(0))


def test_anchor_windows_cover_each_scale_at_a_quarter_of_it_and_are_labelled_by_tiou():
    windows = anchor_windows(40, [2, 8, 64])
    lengths = (windows[:, 1] - windows[:, 0]).tolist()
    assert sorted(set(lengths)) == [2.0, 8.0]  # 64 steps do not fit in 40
    eights = windows[(windows[:, 1] - windows[:, 0]) == 8]
    assert (eights[1:, 0] - eights[:-1, 0]).unique().tolist() == [2.0]
    gt = torch.tensor([[9.5, 17.5]])  # steps 10 .. 17, 8 steps
    labels = window_labels(eights, gt, torch.tensor([3]))
    hits = eights[labels == 3]
    assert [9.5, 17.5] in hits.tolist() and len(hits) == 3  # tIoU 1 and 0.6 twice
    assert window_labels(eights, torch.zeros(0, 2), torch.zeros(0)).eq(0).all()


def test_window_labels_in_chunks_match_every_window_against_every_instance(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    windows = anchor_windows(3000, [2, 8, 32, 256])
    starts = torch.sort(torch.rand(60, generator=gen) * 2900).values
    gt = torch.stack([starts, starts + 2 + torch.rand(60, generator=gen) * 80], dim=1)
    gt = torch.cat([gt, gt[:5]])  # the same segments again under other labels: ties
    labels = torch.randint(1, 20, (65,), generator=gen)
    iou = pairwise_tiou(windows.double(), gt.double())
    best, which = iou.max(dim=1)
    expected = torch.where(best > 0.5, labels[which], 0)
    monkeypatch.setattr(window_refit, "LABEL_CHUNK", 97)
    assert torch.equal(window_labels(windows, gt, labels), expected)
    assert (expected > 0).sum() > 100


def test_refit_classifies_the_training_instances_and_detection_uses_it(data):
    config = edit_config(tiny_config(1), WINDOW_HEAD)
    model = seeded_model(data, config)
    loss = refit_window_head(model, data, config)
    assert 0 < loss < 0.5
    hits = total = 0
    with torch.no_grad():
        for i, video in enumerate(data.videos):
            whole = data.crop(i, video.length, torch.Generator())
            x = torch.cat(list(model.branch_inputs(whole.features).values()), -1)[0]
            logits = model.window_head.linear(model.window_head.inputs(x, whole.segments))
            hits += int((logits.argmax(1) == whole.labels).sum())
            total += len(whole.labels)
    assert hits >= 0.9 * total
    model.eval()
    video = data.crop(0, data.videos[0].length, torch.Generator())
    plain = model(video.features).scores
    model.config.detect.window_score_weight = 1.0
    with torch.no_grad():
        scored = model(video.features)
        # windowed: the same probabilities, one projection window at a time
        rows = model.video_rows(video.features)
        whole = model._window_probs(rows, scored.segments)
        model.config.detect.window_steps = 64
        windowed = model._window_probs(rows, scored.segments)
    # with a = 1 and no step vote, a detection's score is its class's window probability
    assert model.config.detect.step_score_weight == 0 and len(plain)
    own = whole.gather(1, scored.classes[:, None] + 1)[:, 0]
    torch.testing.assert_close(scored.scores, own, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(windowed, whole, rtol=1e-4, atol=1e-5)


def test_fit_fits_the_window_head_after_the_last_epoch_only_when_asked(data):
    records = []
    opts = FitOptions(progress=False, log_fn=lambda _m: None,
                      on_epoch=lambda r, *_: records.append(r))  # fmt: skip
    config = edit_config(tiny_config(2), WINDOW_HEAD)
    model = seeded_model(data, config)
    before = model.window_head.linear.weight.clone()
    fit(model, data, config, opts)
    assert [WINDOW_REFIT_LOSS in r for r in records[-2:]] == [False, True]
    assert not torch.equal(before, model.window_head.linear.weight)


def test_a_window_weight_needs_a_fitted_window_classifier():
    with pytest.raises(TalnetError, match="window_score_weight needs"):
        edit_config(tiny_config(1), {"detect": {"window_score_weight": 0.5}})
    with pytest.raises(TalnetError, match="window_refit_epochs > 0"):
        edit_config(tiny_config(1), {"model": {"window_classifier": True}})
    with pytest.raises(TalnetError, match="window_refit_epochs"):
        edit_config(tiny_config(1), {"train": {"window_refit_epochs": 10}})
    with pytest.raises(TalnetError, match="class_scores 'proposal'"):
        video = {**WINDOW_HEAD, "detect": {"window_score_weight": 0.5}}
        edit_config(load_config("anet13_cpu"), video)
    with pytest.raises(TalnetError, match="window_parts"):
        edit_config(tiny_config(1), {"model": {"window_classifier": True, "window_parts": [[1, 0]]},
                                     "train": {"window_refit_epochs": 10}})  # fmt: skip
    with pytest.raises(TalnetError, match="window_score_weight in"):
        edit_config(tiny_config(1), {**WINDOW_HEAD, "detect": {"window_score_weight": 1.5}})


def test_the_rest_of_the_model_trains_exactly_as_without_the_head(data):
    """The head draws no random numbers and takes no gradient step: fitting it onto a model
    trained without it (benchmarks/redetect_cpu_preset.py --fit-window) is the same model."""
    opts = FitOptions(progress=False, log_fn=lambda _m: None)
    trained = []
    for edits in ({}, WINDOW_HEAD):
        config = edit_config(tiny_config(1), edits)
        model = seeded_model(data, config)
        fit(model, data, config, opts)
        trained.append({k: v for k, v in model.state_dict().items() if "window_head" not in k})
    assert trained[0].keys() == trained[1].keys()
    for key, value in trained[0].items():
        assert torch.equal(value, trained[1][key]), key


def test_ablate_scores_the_base_again_without_the_window_classifier(tmp_path):
    data = tiny_data(tmp_path / "data")
    base = edit_config(tiny_config(1), {**WINDOW_HEAD, "detect": {"window_score_weight": 0.6}})
    name = next(iter(VARIANTS))
    rows = run_ablation(
        data / "annotations.json", data / "features", tmp_path / "ab", base, names=[name],
        progress=False, log_fn=lambda _m: None,
    )  # fmt: skip
    by_name = {r.name: r for r in rows}
    off = by_name[f"{name}, no window classifier"]
    assert 0 <= off.map_at_half <= 1 and off.train_s == 0.0
    assert off.map_avg != by_name[name].map_avg  # the same model, scored another way
