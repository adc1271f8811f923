"""Choosing detect.step_score_weight on held-out training videos (train.fusion_holdout)."""

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
from talnet.io.annotations import clip_for_training, load_ground_truth
from talnet.io.features import read_meta
from talnet.model.talnet import TalNet
from talnet.pipelines.evaluation import evaluate_detector, score_fusion_weights
from talnet.train.fusion import FUSION_SCORES, FUSION_WEIGHT, choose_fusion_weight, fusion_split
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


def training_data(data):
    meta = read_meta(data / "features")
    gt = clip_for_training(load_ground_truth(data / "annotations.json", "validation"))
    return TrainingData(gt, data / "features", meta)


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
    result = train(
        data / "annotations.json", data / "features", tmp_path / "run", fusion_config(),
        options=QUIET,
    )  # fmt: skip
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
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
    torch.manual_seed(0)
    model = TalNet(dict(zip(meta.streams, meta.dims, strict=True)), 3, config).train()
    scores = score_fusion_weights(model, held, config)
    best = choose_fusion_weight(scores, config.detect.step_score_weight)
    assert model.training  # left as it was found
    gt = {v.video_id: held.gt[v.video_id] for v in held.videos}
    for weight, score in scores.items():
        config.detect.step_score_weight = weight
        result = evaluate_detector(Detector(model, held.classes, meta), data / "features", gt)
        assert score == round(result.report.average, 4)
    assert scores[best] == max(scores.values())


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
