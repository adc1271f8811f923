"""The edge regressor (model.edge_regressor): its inputs, its ridge fit, the edges it moves,
its fit after training and its choice on folds of the training videos."""

import re

import pytest
import torch
from model_factory import tiny_config, tiny_data
from test_train_fusion import folds_config, seeded_model, train_logged, training_data

from talnet.config import DEFAULT_EDGE_BINS
from talnet.detect.detector import Detector
from talnet.errors import TalnetError
from talnet.model.edge_head import EdgeRegressor, edge_inputs, edge_signals
from talnet.model.stream import fuse
from talnet.pipelines.evaluation import score_fusion_weights
from talnet.train.edge_refit import (
    EDGE_REFIT_ERROR,
    EdgeWindows,
    edge_rows,
    fit_ridge,
    fit_stages,
    jittered_windows,
    refit_edge_head,
)
from talnet.train.fusion import EDGE_CHOICE, FoldScores, keep_fold_choice, score_folds

BINS = torch.tensor(DEFAULT_EDGE_BINS, dtype=torch.float64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("tiny"), train=8)


def edge_config(folds: int = 2):
    config = folds_config(folds)
    config.model.edge_regressor = True
    config.validate()
    return config


def planted(length: int = 200, start: int = 60, end: int = 120) -> list[torch.Tensor]:
    """Signals of one class (column 1) whose action covers steps [start, end) exactly."""
    steps = torch.zeros(length, 2)
    steps[:, 0] = 1.0
    steps[start:end, 0], steps[start:end, 1] = 0.0, 1.0
    shares = torch.zeros(length, 2)
    shares[start:end, 1] = 3.0
    return edge_signals(steps, shares)


def test_each_input_is_a_bins_mean_of_a_signal_of_the_segments_class():
    signals = planted()
    segment = torch.tensor([[59.5, 119.5]])  # exactly the action: length 60, bins of 6 steps
    x = edge_inputs(signals, segment, torch.tensor([1]), BINS)
    per_edge = (len(BINS) - 1) * 3
    assert x.shape == (1, 2 * per_edge)
    start = x[0, :per_edge].view(-1, 3)  # bins -0.4 .. 0.4 around the start, 3 signals each
    end = x[0, per_edge:].view(-1, 3)
    zeros, ones = torch.zeros(4), torch.ones(4)
    assert torch.allclose(start[:4, 0], zeros) and torch.allclose(start[4:, 0], ones)
    assert torch.allclose(end[:4, 0], ones) and torch.allclose(end[4:, 0], zeros)
    assert torch.allclose(start[4:, 2], torch.full((4,), 3.0))  # the class share over background
    assert torch.allclose(start[:, 1], start[:, 0])  # one class: actionness is its probability


def test_the_ridge_fit_folds_its_standardization_back_exactly():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=gen) * torch.tensor([1.0, 10, 0.1, 3, 1, 5]) + 4
    y = x @ torch.randn(6, 2, generator=gen) + torch.tensor([0.5, -1.0])
    weight, bias, error = fit_ridge(x, y, ridge=0.0)
    assert error < 1e-3
    assert torch.allclose(x @ weight.T + bias, y, atol=1e-2)
    shrunk = fit_ridge(x, y, ridge=1e6)[0]
    assert shrunk.abs().max() < weight.abs().max() / 10  # the penalty pulls towards no slope


def test_jittered_windows_stay_within_the_jitter_and_are_seeded():
    segments = torch.tensor([[10.0, 30.0], [100.0, 200.0]])
    windows, which = jittered_windows(segments, 50, 0.15, torch.Generator().manual_seed(3))
    again = jittered_windows(segments, 50, 0.15, torch.Generator().manual_seed(3))
    assert torch.equal(windows, again[0]) and torch.equal(which, again[1])
    span = segments[which, 1] - segments[which, 0]
    moved = (windows - segments[which]).abs() / span[:, None]
    assert moved.max() <= 0.15 + 1e-6 and moved.max() > 0.1
    assert set(which.tolist()) == {0, 1}


def test_a_fitted_regressor_moves_a_proposals_edges_onto_a_planted_boundary():
    """Fitted on windows around planted actions, it brings a too-short detection's edges back
    to the action's (steps 60 .. 119, edges at 59.5 and 119.5); unfitted, it moves nothing."""
    head = EdgeRegressor(DEFAULT_EDGE_BINS)
    signals, proposal, ones = planted(), torch.tensor([[65.5, 112.5]]), torch.tensor([1])
    assert torch.equal(head.refine(signals, proposal, ones), proposal)  # zeros: no move
    fit_stages(head, planted_windows(0.15), ridge=1e-3)
    refined = head.refine(signals, proposal, ones)[0]
    assert (refined - torch.tensor([59.5, 119.5])).abs().max() < 1.5
    assert (proposal[0] - torch.tensor([59.5, 119.5])).abs().max() > 5


def planted_windows(jitter: float, samples: int = 200) -> list[EdgeWindows]:
    """Jittered windows around five planted actions, each with its own video's signals."""
    gen, out = torch.Generator().manual_seed(0), []
    for start, end in [(40, 80), (60, 120), (30, 150), (90, 110), (20, 60)]:
        truth = torch.tensor([[start - 0.5, end - 0.5]])
        windows, which = jittered_windows(truth, samples, jitter, gen)
        ones = torch.ones(len(windows), dtype=torch.long)
        out.append(EdgeWindows(planted(200, start, end), windows, ones, truth[which]))
    return out


def test_a_cascades_second_stage_fits_what_the_first_left():
    """Two stages fitted on wide jitter: the second learns from the windows as the first moved
    them, its error there is below the first's, and together they bring a far-off detection
    (a quarter of its length off at each edge) closer to the planted edges than one stage."""
    videos = planted_windows(0.35)
    one, two = EdgeRegressor(DEFAULT_EDGE_BINS), EdgeRegressor(DEFAULT_EDGE_BINS, stages=2)
    assert two.linear.weight.shape == (4, one.linear.in_features)
    first_error = fit_stages(one, videos, ridge=1e-3)
    second_error = fit_stages(two, videos, ridge=1e-3)
    assert torch.equal(two.linear.weight[:2], one.linear.weight)  # stage 1 as one stage alone
    assert second_error < first_error
    drawn = [v.windows for v in videos]
    left = [two.refine(v.signals, v.windows, v.columns, stages=1) for v in videos]
    x, _ = edge_rows(two, videos, left)  # read where stage 1 left the windows
    assert not torch.allclose(x, edge_rows(two, videos, drawn)[0])
    signals, far, ones = planted(), torch.tensor([[74.5, 104.5]]), torch.tensor([1])
    truth = torch.tensor([59.5, 119.5])
    by_one = (one.refine(signals, far, ones)[0] - truth).abs().max()
    by_two = (two.refine(signals, far, ones)[0] - truth).abs().max()
    assert by_two < by_one and by_two < 1.5
    assert torch.equal(two.refine(signals, far, ones, stages=1), one.refine(signals, far, ones))


def test_an_unfitted_later_stage_moves_nothing_more():
    videos = planted_windows(0.15, samples=50)
    head = EdgeRegressor(DEFAULT_EDGE_BINS, stages=2)
    fit_stages(head, videos, ridge=1e-3)
    head.set_stage(1, torch.zeros(2, head.linear.in_features), torch.zeros(2))
    signals, proposal, ones = planted(), torch.tensor([[65.5, 112.5]]), torch.tensor([1])
    both = head.refine(signals, proposal, ones)
    assert torch.equal(both, head.refine(signals, proposal, ones, stages=1))
    assert fit_stages(head, [], ridge=1.0) == 0.0 and not head.linear.weight.any()


def test_the_model_moves_edges_only_with_detect_edge_regress_on(data):
    """The regressor fitted on the training videos changes the detections; switched off by
    detect.edge_regress, the model detects as the same model without a regressor."""
    config = edge_config()
    training = training_data(data)
    model, error = fitted_model(data, config)
    assert error > 0 and model.edge_head.linear.weight.abs().sum() > 0
    detector = Detector(model, training.classes, training.meta)
    features = training.features(0)
    on = detector.detect(features)
    off = detector.with_config(_edited(config, edge_regress=False)).detect(features)
    plain = _without_edge_head(model, config)
    reference = Detector(plain, training.classes, training.meta).detect(features)
    assert off == reference
    assert on != off


def fitted_model(data, config):
    """A seeded model with its step head, window classifier and edge regressor fitted on the
    training videos, as training ends; and the regressor's fit error."""
    from talnet.train.step_refit import refit_step_head
    from talnet.train.window_refit import refit_window_head

    training = training_data(data)
    model = seeded_model(data, config)
    refit_step_head(model, training, config)
    refit_window_head(model, training, config)
    return model.eval(), refit_edge_head(model, training, config)


def test_refined_proposals_are_moved_as_their_best_class_detection(data):
    """detect.refine_proposals: the same number of proposals with the same scores, each moved
    by the classifier's offsets of its most probable class (the window classifier's share
    mixed in) and then by the edge regressor's stages for that class."""
    config = edge_config()
    config.detect.proposal_rank, config.detect.window_score_weight = "product", 0.7
    training = training_data(data)
    model, _ = fitted_model(data, config)
    features = {k: torch.from_numpy(v) for k, v in training.features(0).items()}
    refined = Detector(model, training.classes, training.meta).with_config(
        _edited(config, refine_proposals=True)
    )
    with torch.inference_mode():
        plain, scores = model.proposals(features)
        moved, moved_scores = refined.model.proposals(features)
        video = model.video_rows(features)
        logits, deltas = fuse(model.classify(model.branch_inputs(features), plain))
        projections = model._window_projections(video)
        window = torch.softmax(model.window_head.logits(projections, plain), -1)
        probs = 0.3 * torch.softmax(logits, -1) + 0.7 * window
        best = probs[:, 1:].argmax(1) + 1
        rows = torch.arange(len(plain))
        expected = model.coder.decode(plain, deltas[rows, best]).clamp(-0.5, video.length - 0.5)
        expected = model.edge_head.refine(model.edge_signals(video), expected, best)
    assert torch.equal(moved_scores, scores) and len(moved) == len(plain) > 0
    assert torch.allclose(moved, expected, atol=1e-4)
    assert not torch.allclose(moved, plain, atol=1e-2)
    with torch.inference_mode():  # without the regressor: the classifier's offsets alone
        unregressed, _ = refined.with_config(
            _edited(refined.config, edge_regress=False)
        ).model.proposals(features)
    assert not torch.allclose(unregressed, moved, atol=1e-2)
    spreading = refined.with_config(_edited(refined.config, refined_proposal_nms=0.7))
    with torch.inference_mode():  # the near-duplicates that refinement gathers ranked last
        spread, spread_scores = spreading.model.proposals(features)
    assert sorted(map(tuple, spread.tolist())) == sorted(map(tuple, moved.tolist()))
    assert torch.equal(spread_scores, spread_scores.sort(descending=True).values)
    assert not torch.equal(spread, moved)


def _edited(config, **detect):
    import copy

    out = copy.deepcopy(config)
    for key, value in detect.items():
        setattr(out.detect, key, value)
    return out


def _without_edge_head(model, config):
    import copy

    from talnet.model.talnet import TalNet

    plain_config = copy.deepcopy(config)
    plain_config.model.edge_regressor = False
    plain = TalNet(model.stream_dims, model.num_classes, plain_config)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("edge_head")}
    plain.load_state_dict(state)
    return plain.eval()


def test_the_fold_choice_keeps_the_regressor_only_where_it_scores_as_well():
    config = edge_config()
    config.detect.step_score_weight = 0.0
    record = keep_fold_choice(FoldScores({0.0: 0.4, 1.0: 0.5}, edge_off=0.55), config)
    assert config.detect.step_score_weight == 1.0 and config.detect.edge_regress is False
    assert record[EDGE_CHOICE] == {"on": 0.5, "off": 0.55}
    keep_fold_choice(FoldScores({0.0: 0.4, 1.0: 0.5}, edge_off=0.5), config)
    assert config.detect.edge_regress is True  # a tie keeps it


def test_the_folds_score_the_best_weight_again_with_the_regressor_off(data):
    training, config = training_data(data), edge_config()
    model = seeded_model(data, config)
    scores = score_folds(model, training, config, score_fusion_weights)
    assert set(scores.weights) == {0.0, 1.0} and scores.edge_off is not None
    config.train.edge_fold_choice = False  # on, and left on: nothing more to score
    assert score_folds(model, training, config, score_fusion_weights).edge_off is None
    config.train.edge_fold_choice = True
    config.detect.edge_regress = False  # off as configured: nothing more to score
    assert score_folds(model, training, config, score_fusion_weights).edge_off is None


def test_training_fits_the_regressor_and_saves_the_fold_choice(data, tmp_path):
    result, log, messages = train_logged(data, tmp_path / "run", edge_config())
    assert EDGE_REFIT_ERROR in log[-1] and EDGE_CHOICE in log[-1]
    choice = log[-1][EDGE_CHOICE]
    saved = torch.load(result.checkpoint, weights_only=True)
    assert saved["config"]["detect"]["edge_regress"] == (choice["on"] >= choice["off"])
    assert saved["model"]["edge_head.linear.weight"].abs().sum() > 0
    assert any("edge regressor" in m and "(chosen)" in m for m in messages)


@pytest.mark.parametrize(
    "edit, key",
    [
        ({"window_classifier": False}, "model.edge_regressor needs model.step_classifier"),
        ({"window_parts": [[-0.5, 0.0], [1.0, 1.5]]}, "with a window part [0, 1]"),
        ({"edge_bins": [0.1, -0.1]}, "model.edge_bins: at least two increasing"),
        ({"edge_stages": 0}, "model.edge_stages: at least 1"),
    ],
)
def test_an_edge_setting_it_cannot_run_with_names_its_key(edit, key):
    config = edge_config()
    for name, value in edit.items():
        setattr(config.model, name, value)
    if "window_classifier" in edit:
        config.train.window_refit_epochs, config.train.fusion_folds = 0, 0
        config.detect.window_score_weight = 0.0
    with pytest.raises(TalnetError, match=re.escape(key)):
        config.validate()


def test_a_model_without_the_regressor_loads_and_detects_as_before(data):
    config = tiny_config(1)
    assert config.model.edge_regressor is False
    model = seeded_model(data, config)
    assert model.edge_head is None


def test_ablate_scores_the_base_again_with_the_regressor_switched(tmp_path):
    from talnet.pipelines.ablate import VARIANTS, run_ablation

    data = tiny_data(tmp_path / "data", train=8)
    name = next(iter(VARIANTS))
    rows = run_ablation(
        data / "annotations.json", data / "features", tmp_path / "ab", edge_config(),
        names=[name], progress=False, log_fn=lambda _m: None,
    )  # fmt: skip
    switched = [r for r in rows if r.name.startswith(f"{name}, edge regressor")]
    assert len(switched) == 1 and switched[0].train_s == 0.0
    assert 0 <= switched[0].map_at_half <= 1
