"""ActivityNet data: the official ground-truth file as published, features resampled to N steps
per video (times map back to seconds exactly), videos without features listed once."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from model_factory import tiny_config, tiny_data

from talnet.cli.main import main
from talnet.data.dataset import TrainingData
from talnet.data.resample import resample_array, resample_folder
from talnet.detect import detect_features
from talnet.detect.detector import Detector
from talnet.errors import TalnetError
from talnet.io.annotations import (
    DataWarning,
    clip_for_training,
    labels_of,
    load_ground_truth,
    save_ground_truth,
)
from talnet.io.features import FeatureMeta, load_features, read_meta, save_array, write_meta
from talnet.io.types import Annotation, VideoInfo
from talnet.io.video_ids import match_video_id, video_id_aliases
from talnet.train.loop import FitOptions, train

OFFICIAL_SAMPLE = Path(__file__).parent / "data" / "activity_net.v1-3.sample.json"


def test_official_activitynet_json_loads_as_published():
    # activity_net.v1-3.min.json's shape: version, taxonomy, database; resolution and url per
    # video; a [0, 0] segment (the real file has one, 'ZZVrH3Hv1fM'); a segment past the end;
    # testing videos with empty annotations
    raw = json.loads(OFFICIAL_SAMPLE.read_text())
    assert set(raw) == {"version", "taxonomy", "database"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gt = load_ground_truth(OFFICIAL_SAMPLE)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 2  # one per kind: zero-length, past the end
    assert any("1 zero-length segment(s)" in m and "'pPqQrRsStT3'" in m for m in messages)
    assert any("outside the video" in m and "'fFgGhHiIjJ1'" in m for m in messages)
    assert {info.subset for info in gt.values()} == {"training", "validation", "testing"}
    assert gt["5n7NCViB5TU"] == VideoInfo(
        "5n7NCViB5TU",
        "training",
        121.44,
        None,
        [
            Annotation("Discus throw", 24.25018, 38.08036),
            Annotation("Discus throw", 97.00073, 106.284),
        ],
    )
    assert gt["uUvVwWxXyY4"].annotations == []
    assert labels_of(gt) == ["Discus throw", "Doing crunches", "Long jump", "Washing hands"]
    assert list(load_ground_truth(OFFICIAL_SAMPLE, "testing")) == ["uUvVwWxXyY4"]
    # the zero-length instance stays for evaluation but is not trained on
    with pytest.warns(DataWarning):
        val = clip_for_training(load_ground_truth(OFFICIAL_SAMPLE, "Validation"))
    assert [a.start for a in val["pPqQrRsStT3"].annotations] == [1.5]


def test_inverted_segment_is_still_an_error(tmp_path):
    raw = json.loads(OFFICIAL_SAMPLE.read_text())
    raw["database"]["5n7NCViB5TU"]["annotations"][0]["segment"] = [40.0, 38.0]
    (tmp_path / "gt.json").write_text(json.dumps(raw))
    with pytest.raises(TalnetError, match="segment end 38 is not after its start 40"):
        load_ground_truth(tmp_path / "gt.json")


def test_video_id_aliases():
    assert video_id_aliases("v_abc") == ["v_abc", "abc"]
    assert video_id_aliases("abc") == ["abc", "v_abc"]
    assert match_video_id("v_abc", {"abc"}) == "abc"
    assert match_video_id("abc", {"v_abc", "abc"}) == "abc"
    assert match_video_id("zzz", {"abc"}) is None


def test_resampled_grid_maps_steps_to_seconds_exactly():
    meta = FeatureMeta(resample_steps=128, durations={"a": 121.44})
    view = meta.for_video("a")
    steps = np.arange(128)
    np.testing.assert_array_equal(view.step_times(128), (steps + 0.5) * 121.44 / 128)
    assert view.duration(128) == 121.44
    assert view.step_to_seconds(-0.5) == 0.0 and view.step_to_seconds(127.5) == 121.44
    np.testing.assert_allclose(view.seconds_to_step(view.step_to_seconds(steps)), steps)
    assert view.num_steps(5000) == 128
    with pytest.raises(TalnetError, match="video 'b': no duration recorded"):
        meta.for_video("b")
    with pytest.raises(TalnetError, match="for_video"):
        meta.step_to_seconds(1.0)
    fixed = FeatureMeta()
    assert fixed.for_video("anything") is fixed
    assert meta.mismatches(FeatureMeta()) == [
        "resampled to 128 steps in training, not resampled here"
    ]
    assert meta.mismatches(FeatureMeta(resample_steps=256)) == [
        "resampled to 128 steps in training, resampled to 256 steps here"
    ]
    assert meta.mismatches(FeatureMeta(resample_steps=128, durations={"x": 3.0})) == []


def test_resample_array_interpolates_linearly_and_holds_the_ends():
    x = np.array([[0.0], [10.0], [20.0]])
    out = resample_array(x, np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.5, 2.25, 3.0, 4.0]))
    np.testing.assert_allclose(out[:, 0], [0.0, 5.0, 12.5, 20.0, 20.0])
    assert resample_array(x[:1], np.array([1.0]), np.zeros(3)).shape == (3, 1)


def _time_features(meta: FeatureMeta, length: int) -> np.ndarray:
    """Features whose channels are linear in each step's time: t and 2t + 1, twice (streams)."""
    t = meta.step_times(length)
    return np.stack([t, 2 * t + 1, -t, t / 10], axis=1)


def test_resampled_features_map_back_to_seconds_exactly(tmp_path):
    src = tmp_path / "src"
    grid = FeatureMeta(fps=30.0, stride=16, window=16, dims=[2, 2])
    write_meta(src, grid)
    save_array(src, "v_abc", _time_features(grid, 200))  # covers 8/30 .. 106.4 s
    save_array(src, "other", _time_features(grid, 50))
    gt = {"abc": VideoInfo("abc", "validation", 100.0, None, [Annotation("A", 10.0, 60.0)])}
    report = resample_folder(src, tmp_path / "out", 128, gt, progress=False)
    assert sorted(report.written) == ["abc", "other"]  # the ground truth's spelling of v_abc
    meta = read_meta(tmp_path / "out")
    assert meta.resample_steps == 128 and (meta.stride, meta.fps) == (16, 30.0)
    assert meta.durations == {"abc": 100.0, "other": grid.duration(50)}
    assert meta.extra["resampled"]["source_grid"] == "meta"
    feats = load_features(tmp_path / "out", "abc", meta)
    assert feats["rgb"].shape == (128, 2)
    view = meta.for_video("abc")
    expected = view.step_times(128)
    inside = expected >= grid.step_to_seconds(0)  # before the first source step: held
    # each resampled step holds the time it is centred at: the features were linear in time
    np.testing.assert_allclose(feats["rgb"][inside, 0], expected[inside], rtol=1e-6)
    np.testing.assert_allclose(feats["rgb"][inside, 1], 2 * expected[inside] + 1, rtol=1e-6)
    np.testing.assert_allclose(feats["rgb"][~inside, 0], grid.step_to_seconds(0), rtol=1e-6)
    np.testing.assert_array_equal(expected, (np.arange(128) + 0.5) * 100.0 / 128)
    # a video without ground truth keeps what its grid covers
    other = meta.for_video("other")
    assert other.duration(128) == pytest.approx(grid.duration(50))


def test_features_without_meta_spread_over_the_ground_truth_duration(tmp_path):
    src = tmp_path / "tsp"
    save_array(src, "v_abc", np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 4)))
    save_array(src, "v_nogt", np.ones((7, 4)))
    gt = {"abc": VideoInfo("abc", "training", 50.0, None, [])}
    with pytest.warns(DataWarning, match=r"1 video\(s\) \('v_nogt'\) left out, no duration"):
        report = resample_folder(src, tmp_path / "out", 20, gt, progress=False)
    assert report.skipped == ["v_nogt"]
    meta = read_meta(tmp_path / "out")
    assert meta.extra["resampled"]["source_grid"] == "uniform"
    x = load_features(tmp_path / "out", "abc", meta)["rgb"][:, 0]
    # source step j at (j + 0.5) * 5 s, target step i at (i + 0.5) * 2.5 s
    target = (np.arange(20) + 0.5) * 2.5
    np.testing.assert_allclose(x, np.clip(target / 5.0 - 0.5, 0, 9), atol=1e-6)


def test_resample_cli_and_bad_input_leave_no_output(tmp_path, capsys):
    src = tmp_path / "src"
    write_meta(src, FeatureMeta(dims=[2, 2]))
    save_array(src, "a", np.ones((30, 4)))
    bad = np.ones((30, 4))
    bad[3, 1] = np.nan
    save_array(src, "b", bad)
    out = tmp_path / "out"
    assert main(["resample-features", str(src), str(out), "--steps", "16", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"talnet: error: {src / 'b.npy'}: video 'b': 1 NaN/inf value(s)")
    assert len(err.splitlines()) == 1
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["src"]
    (src / "b.npy").unlink()
    assert main(["resample-features", str(src), str(out), "--steps", "16", "--quiet"]) == 0
    assert "1 videos resampled to 16 steps" in capsys.readouterr().out
    assert main(["resample-features", str(src), str(out), "--steps", "16", "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_missing_features_listed_once_in_train_and_detect(tmp_path):
    data = tiny_data(tmp_path / "data", train=4, test=3)
    feats = data / "features"
    for vid in ("synth_validation_0001", "synth_validation_0003", "synth_test_0002"):
        (feats / f"{vid}.npy").unlink()
    gt = load_ground_truth(data / "annotations.json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(
            data / "annotations.json", feats, tmp_path / "run", tiny_config(1),
            options=FitOptions(progress=False, log_fn=lambda _m: None),
        )  # fmt: skip
    missing = [str(w.message) for w in caught if "have no features" in str(w.message)]
    assert missing == [
        f"{feats}: 2 video(s) ('synth_validation_0001', 'synth_validation_0003') of the "
        "training subset have no features; training without them"
    ]
    test_ids = sorted(v for v, info in gt.items() if info.subset == "test")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dets = detect_features(Detector.from_checkpoint(result.checkpoint), feats, test_ids,
                               progress=False)  # fmt: skip
    missing = [str(w.message) for w in caught if "have no features" in str(w.message)]
    assert missing == [f"{feats}: 1 video(s) ('synth_test_0002') have no features; no detections "
                       "for them"]  # fmt: skip
    assert sorted(dets) == ["synth_test_0000", "synth_test_0001"]
    save_ground_truth(tmp_path / "none.json", {"x": VideoInfo("x", "validation", 9.0, None, [])})
    with pytest.raises(TalnetError, match=r"none of 1 video\(s\) \('x'\) of the training subset"):
        TrainingData(load_ground_truth(tmp_path / "none.json"), feats, read_meta(feats))
