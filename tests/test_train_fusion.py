"""Choosing detect.step_score_weight on training videos the choice has not seen
(train.fusion_holdout, train.fusion_folds)."""

import json
import re

import pytest
import torch
from model_factory import tiny_config, tiny_data

from talnet.cli.main import main
from talnet.config import load_config, save_config
from talnet.data.dataset import TrainingData
from talnet.detect.detector import Detector
from talnet.errors import TalnetError
from talnet.evaluate.detection import PROTOCOL_TIOUS, evaluate_detection
from talnet.io.annotations import clip_for_training, load_ground_truth
from talnet.io.features import read_meta
from talnet.model.talnet import TalNet
from talnet.pipelines.evaluation import evaluate_detector, score_fusion_weights
from talnet.train.fusion import (
    FUSION_SCORES,
    FUSION_WEIGHT,
    choose_fusion_weight,
    fusion_folds,
    fusion_split,
    score_folds,
)
from talnet.train.loop import FitOptions, train

QUIET = FitOptions(progress=False, log_fn=lambda _m: None, score_fusion=score_fusion_weights)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("tiny"), train=8)


def fusion_config(epochs: int = 3, weights=(0.0, 1.0)):
    config = tiny_config(epochs)
    config.model.step_classifier, config.model.step_input = True, "features"
    config.train.step_refit_epochs = 20
    config.train.fusion_holdout, config.train.fusion_weights = 0.25, list(weights)
    config.train.fusion_final_epochs = 1
    config.validate()
    return config


def folds_config(folds: int = 2, weights=(0.0, 1.0)):
    """The cross-fitted choice: no video held out of training, the heads refitted per fold."""
    config = tiny_config(2)
    config.model.step_classifier, config.model.step_input = True, "features"
    config.model.window_classifier = True
    config.train.step_refit_epochs, config.train.window_refit_epochs = 20, 20
    config.train.fusion_folds, config.train.fusion_weights = folds, list(weights)
    config.detect.window_score_weight = 0.5
    config.validate()
    return config


def seeded_model(data, config) -> TalNet:
    """An untrained TalNet for the tiny data's streams, 3 classes, from torch seed 0."""
    meta = read_meta(data / "features")
    torch.manual_seed(0)
    return TalNet(dict(zip(meta.streams, meta.dims, strict=True)), 3, config)


def training_data(data):
    meta = read_meta(data / "features")
    gt = clip_for_training(load_ground_truth(data / "annotations.json", "validation"))
    return TrainingData(gt, data / "features", meta)


def train_logged(data, run, config):
    """`train` on the tiny data into `run` with the fusion scorer: its result, the run's log
    records and the messages it said."""
    messages = []
    options = FitOptions(progress=False, log_fn=messages.append, score_fusion=score_fusion_weights)
    result = train(data / "annotations.json", data / "features", run, config, options=options)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return result, log, messages


def test_the_split_is_seeded_disjoint_and_holds_out_the_fraction(data):
    training, config = training_data(data), fusion_config()
    split = fusion_split(training, config)
    held = [v.video_id for v in split.held.videos]
    kept = [v.video_id for v in split.kept.videos]
    assert len(held) == 2 and len(kept) == 6 and not set(held) & set(kept)
    assert sorted(held + kept) == sorted(v.video_id for v in training.videos)
    assert split.choice_epoch == 1  # after epoch 2 of 3, the last one trains on all eight
    assert [v.video_id for v in fusion_split(training, config).held.videos] == held
    config.train.seed = 1
    assert [v.video_id for v in fusion_split(training, config).held.videos] != held
    config.train.fusion_holdout = 0.0
    assert fusion_split(training, config) is None


def test_training_chooses_the_weight_that_scores_best_held_out_and_saves_it(data, tmp_path):
    result, log, _ = train_logged(data, tmp_path / "run", fusion_config())
    assert [FUSION_WEIGHT in r for r in log] == [False, True, False]
    scores = {float(w): s for w, s in log[1][FUSION_SCORES].items()}
    assert set(scores) == {0.0, 1.0}
    chosen = log[1][FUSION_WEIGHT]
    assert scores[chosen] == max(scores.values())
    # two of eight videos held out of epochs 1 and 2: the last epoch, on all, takes more steps
    assert log[0]["steps"] == log[1]["steps"] < log[2]["steps"]
    saved = torch.load(result.checkpoint, weights_only=True)["config"]
    assert saved["detect"]["step_score_weight"] == chosen
    assert load_config(tmp_path / "run" / "config.yaml").detect.step_score_weight == chosen


def test_each_weight_is_scored_as_a_detector_with_that_weight_scores(data):
    training, config = training_data(data), fusion_config(weights=(0.0, 0.5, 1.0))
    held = fusion_split(training, config).held
    meta = read_meta(data / "features")
    model = seeded_model(data, config).train()
    scores = score_fusion_weights([(model, held)], config)
    best = choose_fusion_weight(scores, config.detect.step_score_weight)
    assert model.training  # left as it was found
    gt = {v.video_id: held.gt[v.video_id] for v in held.videos}
    for weight, score in scores.items():
        config.detect.step_score_weight = weight
        result = evaluate_detector(Detector(model, held.classes, meta), data / "features", gt)
        assert score == round(result.report.average, 4)
    assert scores[best] == max(scores.values())


def test_folds_are_seeded_disjoint_and_cover_every_video(data):
    training, config = training_data(data), folds_config(folds=3)
    folds = fusion_folds(training, config)
    every = sorted(v.video_id for v in training.videos)
    held = [[v.video_id for v in fold.videos] for _, fold in folds]
    assert sorted(i for ids in held for i in ids) == every  # each video in exactly one fold
    assert sorted(len(ids) for ids in held) == [2, 3, 3]
    for (rest, _), ids in zip(folds, held, strict=True):
        assert sorted([v.video_id for v in rest.videos] + ids) == every
    assert [[v.video_id for v in f.videos] for _, f in fusion_folds(training, config)] == held
    config.train.seed = 1
    assert [[v.video_id for v in f.videos] for _, f in fusion_folds(training, config)] != held
    config.train.fusion_folds = 20  # more folds than videos: one video per fold
    assert len(fusion_folds(training, config)) == len(every)
    config.train.fusion_folds = 0
    assert fusion_folds(training, config) == []


def test_parts_are_scored_on_their_pooled_detections(data):
    training, config = training_data(data), folds_config(weights=(0.0, 0.5))
    meta = read_meta(data / "features")
    torch.manual_seed(0)
    one = TalNet(dict(zip(meta.streams, meta.dims, strict=True)), 3, config).eval()
    other = TalNet(dict(zip(meta.streams, meta.dims, strict=True)), 3, config).train()
    (_, first), (_, second) = fusion_folds(training, config)
    scores = score_fusion_weights([(one, first), (other, second)], config)
    assert not one.training and other.training  # each left as it was found
    gt = {v.video_id: training.gt[v.video_id] for v in training.videos}
    for weight, score in scores.items():
        config.detect.step_score_weight = weight
        dets = {}
        for model, fold in ((one, first), (other, second)):
            fold_gt = {v.video_id: fold.gt[v.video_id] for v in fold.videos}
            detector = Detector(model, fold.classes, meta)
            dets.update(evaluate_detector(detector, data / "features", fold_gt).detections)
        tious = PROTOCOL_TIOUS[config.evaluate.protocol]
        assert score == round(evaluate_detection(gt, dets, tious).average, 4)
        # pooled, not the mean of the folds' own mAPs: one ranking across every video
        assert set(dets) == set(gt)


def test_cross_fitted_choice_trains_on_every_video_and_saves_the_best_weight(data, tmp_path):
    result, log, messages = train_logged(data, tmp_path / "run", folds_config())
    assert [FUSION_WEIGHT in r for r in log] == [False, True]  # after the last epoch's refits
    assert log[0]["steps"] == log[1]["steps"]  # no video held out of any epoch
    scores = {float(w): s for w, s in log[1][FUSION_SCORES].items()}
    assert set(scores) == {0.0, 1.0}
    chosen = log[1][FUSION_WEIGHT]
    assert scores[chosen] == max(scores.values())
    assert any("on 2 folds of 8 training videos" in m for m in messages)
    assert any(f"step score weight {chosen:g} (chosen)" in m for m in messages)
    saved = torch.load(result.checkpoint, weights_only=True)["config"]
    assert saved["detect"]["step_score_weight"] == chosen
    assert saved["detect"]["window_score_weight"] == 0.5  # scored with 1, kept as configured
    assert load_config(tmp_path / "run" / "config.yaml").detect.step_score_weight == chosen


def test_the_cross_fitted_choice_scores_what_the_refitted_heads_detect(data):
    """The folds' scores are those of copies whose heads were fitted without the fold, with
    the window classifier's probability alone: rebuilt here by hand they agree."""
    training, config = training_data(data), folds_config(weights=(0.0, 1.0))
    from talnet.train.loop import _cross_fit_fusion
    from talnet.train.step_refit import refit_step_head
    from talnet.train.window_refit import refit_window_head

    meta = read_meta(data / "features")
    model = seeded_model(data, config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = _cross_fit_fusion(model, training, config, QUIET)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # copies only
    parts = []
    for rest, fold in fusion_folds(training, config):
        part = TalNet(dict(zip(meta.streams, meta.dims, strict=True)), 3, config)
        part.load_state_dict(before)
        refit_step_head(part, rest, config)
        refit_window_head(part, rest, config)
        parts.append((part, fold))
    config.detect.window_score_weight = 1.0
    expected = score_fusion_weights(parts, config)
    assert {float(w): s for w, s in record[FUSION_SCORES].items()} == expected


def test_the_fold_choice_shows_a_bar_only_when_asked_and_scores_the_same(data, capsys):
    """Minutes of refits on 200 videos: with progress a bar names them on stderr; the bar does
    not change what is scored."""
    training, config = training_data(data), folds_config(weights=(0.0, 1.0))
    model = seeded_model(data, config)
    quiet = score_folds(model, training, config, score_fusion_weights)
    assert "vote weight" not in capsys.readouterr().err
    shown = score_folds(model, training, config, score_fusion_weights, progress=True)
    err = capsys.readouterr().err
    assert "vote weight: refits on folds" in err and "scoring 2 weights" in err
    assert shown == quiet


@pytest.mark.parametrize(
    "edits, key",
    [
        ({"fusion_folds": 1}, "train.fusion_folds: 0 (off) or at least 2"),
        ({"fusion_folds": 2, "fusion_holdout": 0.0, "fusion_weights": []},
         "train.fusion_folds needs fusion_weights"),
    ],
)
def test_a_folds_setting_it_cannot_run_with_names_its_key(edits, key):
    config = folds_config()
    for name, value in edits.items():
        setattr(config.train, name, value)
    with pytest.raises(TalnetError, match=re.escape(key)):
        config.validate()


def test_folds_need_a_window_classifier_and_exclude_a_hold_out():
    config = folds_config()
    config.train.fusion_holdout, config.train.fusion_final_epochs = 0.25, 1
    with pytest.raises(TalnetError, match=re.escape("not with train.fusion_holdout")):
        config.validate()
    config = folds_config()
    config.model.window_classifier, config.detect.window_score_weight = False, 0.0
    with pytest.raises(TalnetError, match=re.escape("model.window_classifier")):
        config.validate()


@pytest.mark.parametrize(
    "edits, key",
    [
        ({"fusion_weights": []}, "train.fusion_holdout needs fusion_weights"),
        ({"fusion_weights": [0.5, 1.5]}, "train.fusion_holdout needs fusion_weights"),
        ({"fusion_final_epochs": 3}, "train.fusion_final_epochs"),
        ({"fusion_holdout": 1.0}, "train.fusion_holdout in [0, 1)"),
    ],
)
def test_a_fusion_setting_it_cannot_run_with_names_its_key(edits, key):
    config = fusion_config()
    for name, value in edits.items():
        setattr(config.train, name, value)
    with pytest.raises(TalnetError, match=re.escape(key)):
        config.validate()


def test_ties_go_to_the_configs_own_weight_then_the_larger():
    assert choose_fusion_weight({0.25: 0.5, 0.5: 0.5, 0.75: 0.4}, own=0.25) == 0.25
    assert choose_fusion_weight({0.25: 0.5, 0.5: 0.5, 0.75: 0.4}, own=0.75) == 0.5
    assert choose_fusion_weight({0.25: 0.3, 0.5: 0.5}, own=0.25) == 0.5


def test_fit_without_a_fusion_scorer_says_it_needs_one(data, tmp_path):
    options = FitOptions(progress=False, log_fn=lambda _m: None)
    with pytest.raises(TalnetError, match="no fusion scorer"):
        train(data / "annotations.json", data / "features", tmp_path / "run", fusion_config(),
              options=options)  # fmt: skip
    assert not (tmp_path / "run").exists()  # nothing written


def test_talnet_train_chooses_the_weight_from_a_config_file(data, tmp_path):
    save_config(tmp_path / "fusion.yaml", fusion_config())
    run = tmp_path / "run"
    args = ["train", "--ground-truth", str(data / "annotations.json"),
            "--features", str(data / "features"), "--out", str(run),
            "--config", str(tmp_path / "fusion.yaml"), "--threads", "1", "--quiet"]  # fmt: skip
    assert main(args) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    chosen = [r[FUSION_WEIGHT] for r in log if FUSION_WEIGHT in r]
    assert len(chosen) == 1 and chosen[0] in (0.0, 1.0)
    assert load_config(run / "config.yaml").detect.step_score_weight == chosen[0]
