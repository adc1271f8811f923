"""Labels that imply others (CliffDiving is always Diving too): learned from the training
annotations, kept in the checkpoint, detected as both."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from model_factory import seeded_model, tiny_config, tiny_data

from talnet.config import edit_config
from talnet.data.dataset import TrainingData
from talnet.detect.detector import Detector
from talnet.errors import TalnetError
from talnet.io.annotations import clip_for_training, load_ground_truth
from talnet.io.features import load_features, read_meta
from talnet.io.types import Annotation, VideoInfo
from talnet.model.checkpoint import load_checkpoint, save_checkpoint
from talnet.model.implications import (
    implication_matrix,
    learn_implications,
)
from talnet.model.talnet import implies
from talnet.train.loop import FitOptions, train

# the co-labelled data below warns that its instances carry two labels, as it should
pytestmark = pytest.mark.filterwarnings("ignore::talnet.io.annotations.DataWarning")
CLASSES = ["CliffDiving", "Diving", "HighJump", "LongJump"]


def _video(vid: str, *anns: tuple[str, float, float]) -> VideoInfo:
    return VideoInfo(vid, "validation", 100.0, 30.0, [Annotation(*a) for a in anns])


def test_a_label_always_on_another_labels_segment_implies_it():
    gt = {
        # every CliffDiving is a Diving too (one a little off, as annotators round); Diving
        # also alone; HighJump with LongJump on one of its two segments only
        "a": _video("a", ("CliffDiving", 1, 3), ("Diving", 1, 3), ("Diving", 10, 12),
                    ("HighJump", 20, 25), ("LongJump", 20, 25)),
        "b": _video("b", ("CliffDiving", 5, 9), ("Diving", 5.1, 9), ("HighJump", 30, 35)),
    }  # fmt: skip
    assert learn_implications(gt, CLASSES) == [["CliffDiving", "Diving"]]
    # a segment that only overlaps is not the same segment
    gt["b"].annotations[1] = Annotation("Diving", 6, 9)
    assert learn_implications(gt, CLASSES) == []


def test_implications_chain_and_need_two_instances():
    gt = {
        "a": _video("a", ("CliffDiving", 1, 3), ("Diving", 1, 3), ("HighJump", 1, 3)),
        "b": _video("b", ("CliffDiving", 5, 9), ("Diving", 5, 9), ("HighJump", 5, 9)),
        "c": _video("c", ("Diving", 1, 3), ("HighJump", 1, 3), ("LongJump", 4, 6)),
    }
    found = learn_implications(gt, CLASSES)
    # Diving and HighJump always come together (each implies the other), CliffDiving both
    assert found == [
        ["CliffDiving", "Diving"], ["CliffDiving", "HighJump"],
        ["Diving", "HighJump"], ["HighJump", "Diving"],
    ]  # fmt: skip
    one = {"a": _video("a", ("CliffDiving", 1, 3), ("Diving", 1, 3))}
    assert learn_implications(one, CLASSES) == []  # one instance is no rule


def test_the_matrix_sums_the_probabilities_of_the_labels_that_imply_a_class():
    m = implication_matrix([["CliffDiving", "Diving"], ["Diving", "HighJump"]], CLASSES)
    p = torch.tensor([[0.1, 0.2, 0.3, 0.15, 0.25]])  # background first
    out = implies(p, m)
    # Diving: + CliffDiving; HighJump: + Diving + CliffDiving (the chain); the rest as they were
    assert torch.allclose(out, torch.tensor([[0.1, 0.2, 0.5, 0.65, 0.25]]))
    assert implies(p, None) is p
    with pytest.raises(TalnetError, match="Surfing"):
        implication_matrix([["Surfing", "Diving"]], CLASSES)


@pytest.fixture(scope="module")
def colabelled(tmp_path_factory):
    """Tiny synthetic data where every action_00 instance is also labelled action_01."""
    folder = tiny_data(tmp_path_factory.mktemp("colabelled"))
    path = folder / "annotations.json"
    doc = json.loads(path.read_text())
    for video in doc["database"].values():
        extra = [dict(a, label="action_01") for a in video["annotations"]
                 if a["label"] == "action_00"]  # fmt: skip
        video["annotations"] += extra
    path.write_text(json.dumps(doc))
    return folder


def test_training_learns_the_implications_and_the_checkpoint_keeps_them(colabelled, tmp_path):
    gt = clip_for_training(load_ground_truth(colabelled / "annotations.json", "validation"))
    assert learn_implications(gt, ["action_00", "action_01", "action_02"]) == [
        ["action_00", "action_01"]
    ]
    said: list[str] = []
    config = tiny_config(1)
    config.train.learn_implications = True
    result = train(
        colabelled / "annotations.json", colabelled / "features", tmp_path / "run", config,
        options=FitOptions(progress=False, log_fn=said.append),
    )  # fmt: skip
    assert result.config.detect.implied_labels == [["action_00", "action_01"]]
    assert any("action_00 -> action_01" in line for line in said)
    detector = Detector.from_checkpoint(result.checkpoint)
    assert detector.config.detect.implied_labels == [["action_00", "action_01"]]
    # a checkpoint whose implications name a label it has no class for: refused, file named
    ckpt = load_checkpoint(result.checkpoint)
    ckpt["config"]["detect"]["implied_labels"] = [["action_09", "action_01"]]
    save_checkpoint(tmp_path / "bad.pt", ckpt)
    with pytest.raises(TalnetError, match=r"bad\.pt.*action_09"):
        Detector.from_checkpoint(tmp_path / "bad.pt")


def test_detection_scores_an_implied_label_by_both_probabilities(colabelled):
    gt = clip_for_training(load_ground_truth(colabelled / "annotations.json", "validation"))
    data = TrainingData(gt, colabelled / "features", read_meta(colabelled / "features"))
    config = tiny_config(1)
    config.detect.max_detections = 10_000  # every candidate kept: compare whole lists
    plain = Detector(seeded_model(data, config), data.classes, data.meta)
    edits = {"detect": {"implied_labels": [["action_00", "action_01"]]}}
    both = plain.with_config(edit_config(plain.config, edits))
    features = load_features(colabelled / "features", data.videos[0].video_id, data.meta)
    before, after = plain.detect(features), both.detect(features)

    def of(dets, label):
        return sorted((d.start, d.end, d.score) for d in dets if d.label == label)

    for label in ("action_00", "action_02"):  # the others: as they were
        assert of(after, label) == of(before, label)
    top = {label: max(s for *_, s in of(before, label)) for label in data.classes}
    implied_top = max(s for *_, s in of(after, "action_01"))
    # each action_01 candidate gained its proposal's action_00 probability
    assert implied_top > top["action_01"] and implied_top >= top["action_00"] - 1e-6
    # video-level scores (ActivityNet practice): action_01's becomes 0.3 + 0.5
    video = np.array([0.5, 0.3, 0.2], dtype=np.float32)
    before = plain.detect(features, video_scores=video)
    after = both.detect(features, video_scores=video)
    assert of(after, "action_00") == of(before, "action_00")
    ratios = [b[2] / a[2] for a, b in zip(of(before, "action_01"), of(after, "action_01"),
                                          strict=True)]  # fmt: skip
    assert ratios and np.allclose(ratios, 0.8 / 0.3, rtol=1e-4)


def test_config_refuses_malformed_implications():
    config = tiny_config(1)
    with pytest.raises(TalnetError, match="implied_labels"):
        edit_config(config, {"detect": {"implied_labels": [["Diving"]]}})
    with pytest.raises(TalnetError, match="implied_labels"):
        edit_config(config, {"detect": {"implied_labels": [["Diving", "Diving"]]}})
    assert replace(config.detect).implied_labels == []
