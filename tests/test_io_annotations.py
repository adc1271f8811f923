import json
import warnings

import pytest

from talnet.errors import TalnetError
from talnet.io.annotations import (
    AMBIGUOUS,
    DataWarning,
    clip_for_training,
    labels_of,
    load_ground_truth,
    save_ground_truth,
    select_subset,
)
from talnet.io.types import Annotation, VideoInfo


def write(path, obj):
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def gt_file(tmp_path, database, name="gt.json"):
    return write(tmp_path / name, {"database": database})


def video(subset="test", duration=30.0, fps=30.0, anns=(("Diving", 1.0, 2.5),)):
    return {
        "subset": subset,
        "duration": duration,
        "fps": fps,
        "annotations": [{"label": lab, "segment": [s, e]} for lab, s, e in anns],
    }


def test_load_basic(tmp_path):
    path = gt_file(tmp_path, {"v1": video(), "v2": video("validation", anns=())})
    gt = load_ground_truth(path)
    assert gt["v1"] == VideoInfo("v1", "test", 30.0, 30.0, [Annotation("Diving", 1.0, 2.5)])
    assert gt["v2"].annotations == []
    assert set(load_ground_truth(path, subset="test")) == {"v1"}


def test_save_load_round_trip(tmp_path):
    gt = {
        "a": VideoInfo("a", "test", 12.5, 25.0, [Annotation("X", 0.5, 1.25)]),
        "b": VideoInfo("b", "validation", None, None, [Annotation(AMBIGUOUS, 2.0, 3.0)]),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        save_ground_truth(tmp_path / "out" / "gt.json", gt)
        assert load_ground_truth(tmp_path / "out" / "gt.json") == gt


def test_subset_case_insensitive_like_actionformer(tmp_path):
    # ActionFormer's thumos14.json: capitalised subsets, extra keys per instance.
    entry = video("Validation")
    entry["annotations"][0].update({"segment(frames)": [30.0, 75.0], "label_id": 7})
    path = gt_file(tmp_path, {"video_validation_0000051": entry, "t": video("Test")})
    gt = load_ground_truth(path, subset="validation")
    assert list(gt) == ["video_validation_0000051"]
    assert gt["video_validation_0000051"].subset == "validation"
    assert list(load_ground_truth(path, subset="TEST")) == ["t"]
    assert list(select_subset(load_ground_truth(path), "Test")) == ["t"]


def test_opentad_frame_count_gives_fps(tmp_path):
    entry = {"subset": "validation", "duration": 10.0, "frame": 300, "annotations": []}
    gt = load_ground_truth(gt_file(tmp_path, {"v": entry}))
    assert gt["v"].fps == pytest.approx(30.0)


def test_unknown_subset_names_existing(tmp_path):
    path = gt_file(tmp_path, {"v1": video("Test"), "v2": video("Validation")})
    with pytest.raises(TalnetError) as err:
        load_ground_truth(path, subset="training")
    assert str(err.value) == (
        f"{path}: no video in subset 'training'; subsets present: test, validation"
    )


def test_clip_for_training():
    gt = {
        "v": VideoInfo(
            "v",
            "test",
            10.0,
            30.0,
            [Annotation("A", -1.0, 2.0), Annotation("B", 9.0, 12.0), Annotation("C", 10.5, 11.0)],
        )
    }
    clipped = clip_for_training(gt)
    assert clipped["v"].annotations == [Annotation("A", 0.0, 2.0), Annotation("B", 9.0, 10.0)]
    assert len(gt["v"].annotations) == 3  # the input is untouched


def test_labels_of_excludes_ambiguous():
    gt = {
        "v": VideoInfo(
            "v", "test", None, None, [Annotation("B", 0, 1), Annotation(AMBIGUOUS, 1, 2)]
        ),
        "w": VideoInfo("w", "test", None, None, [Annotation("A", 0, 1), Annotation("B", 2, 3)]),
    }
    assert labels_of(gt) == ["A", "B"]


def test_warning_segment_past_end_kept(tmp_path):
    path = gt_file(tmp_path, {"video_test_0000270": video(duration=5.0, anns=(("A", 4.0, 7.0),))})
    with pytest.warns(DataWarning, match=r"video 'video_test_0000270'.*outside the video"):
        gt = load_ground_truth(path)
    assert gt["video_test_0000270"].annotations == [Annotation("A", 4.0, 7.0)]


def test_warning_only_ambiguous(tmp_path):
    path = gt_file(tmp_path, {"video_test_0001292": video(anns=((AMBIGUOUS, 1.0, 2.0),))})
    with pytest.warns(DataWarning, match=r"video 'video_test_0001292'.*only Ambiguous"):
        gt = load_ground_truth(path)
    assert labels_of(gt) == []


def test_warning_two_labels_same_instance(tmp_path):
    anns = (("CliffDiving", 1.0, 2.0), ("Diving", 1.0, 2.0), ("Diving", 5.0, 6.0))
    path = gt_file(tmp_path, {"v9": video(anns=anns)})
    with pytest.warns(DataWarning, match=r"video 'v9': 1 instance.*CliffDiving\+Diving"):
        gt = load_ground_truth(path)
    assert len(gt["v9"].annotations) == 3


def test_clean_file_gives_no_warning(tmp_path):
    path = gt_file(tmp_path, {"v": video()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_ground_truth(path)


def test_actionformer_thumos14_json_loads_as_is(tmp_path):
    # The layout of ActionFormer's data/thumos/annotations/thumos14.json.
    raw = {
        "version": "Thumos14-30fps",
        "database": {
            "video_validation_0000051": {
                "subset": "Validation",
                "duration": 169.79,
                "fps": 30.0,
                "annotations": [
                    {
                        "label": "BaseballPitch",
                        "segment": [67.5, 75.9],
                        "segment(frames)": [2025.0, 2277.0],
                        "label_id": 0,
                    }
                ],
            },
            "video_test_0000004": {
                "subset": "Test",
                "duration": 33.47,
                "fps": 30.0,
                "annotations": [
                    {
                        "label": "CricketBowling",
                        "segment": [0.2, 1.1],
                        "segment(frames)": [6.0, 33.0],
                        "label_id": 5,
                    }
                ],
            },
        },
    }
    path = write(tmp_path / "thumos14.json", raw)
    gt = load_ground_truth(path)
    assert gt["video_validation_0000051"] == VideoInfo(
        "video_validation_0000051",
        "validation",
        169.79,
        30.0,
        [Annotation("BaseballPitch", 67.5, 75.9)],
    )
    assert list(load_ground_truth(path, "test")) == ["video_test_0000004"]
    assert labels_of(gt) == ["BaseballPitch", "CricketBowling"]


def test_one_warning_per_kind_for_many_videos(tmp_path):
    # THUMOS'14 labels instances in dozens of videos both CliffDiving and Diving: one line
    both = (("CliffDiving", 1.0, 2.0), ("Diving", 1.0, 2.0))
    videos = {f"v{i}": video(duration=5.0, anns=both) for i in range(8)}
    videos["late"] = video(duration=5.0, anns=(("A", 4.0, 9.0),))
    path = gt_file(tmp_path, videos)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_ground_truth(path)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 2
    multi = next(m for m in messages if "several classes" in m)
    assert "8 videos ('v0', 'v1', 'v2', 'v3', 'v4', …): 8 instance(s)" in multi
    assert any("video 'late': 1 segment(s) outside the video" in m for m in messages)
