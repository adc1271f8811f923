import numpy as np
import pytest

from talnet.errors import TalnetError
from talnet.io.features import (
    FeatureMeta,
    list_feature_videos,
    load_features,
    read_meta,
    save_array,
    write_meta,
)


def test_concat_layout_defaults_inferred(tmp_path):
    arr = np.arange(5 * 6, dtype=np.float64).reshape(5, 6)
    save_array(tmp_path, "v1", arr)
    save_array(tmp_path, "v0", arr[:3])
    meta = read_meta(tmp_path)
    assert (meta.layout, meta.dims, meta.streams) == ("concat", [3, 3], ["rgb", "flow"])
    (tmp_path / ".v2.npy.tmp123.npy").write_bytes(b"partial")  # left by a killed writer
    assert list_feature_videos(tmp_path, meta) == ["v0", "v1"]
    feats = load_features(tmp_path, "v1", meta)
    assert feats["rgb"].dtype == np.float32 and feats["rgb"].shape == (5, 3)
    np.testing.assert_array_equal(feats["flow"], arr[:, 3:])


def test_folders_layout_with_meta(tmp_path):
    write_meta(tmp_path, FeatureMeta(fps=25.0, stride=8, window=16, layout="folders"))
    save_array(tmp_path, "v", np.ones((4, 2)), stream="rgb")
    save_array(tmp_path, "v", np.zeros((4, 3)), stream="flow")
    meta = read_meta(tmp_path)
    assert (meta.layout, meta.dims, meta.fps, meta.stride) == ("folders", [2, 3], 25.0, 8)
    feats = load_features(tmp_path, "v", meta)
    assert feats["rgb"].shape == (4, 2) and feats["flow"].shape == (4, 3)
    assert meta.duration(4) == pytest.approx((3 * 8 + 16) / 25.0)


def test_grid_step_rule_hand_computed():
    meta = FeatureMeta(fps=30.0, stride=4, window=16)
    counts = [meta.num_steps(n) for n in (0, 1, 15, 16, 19, 20, 100)]
    assert counts == [0, 1, 1, 1, 1, 2, 22]
    assert FeatureMeta(stride=16).num_steps(47) == 2  # the 15-frame tail is dropped
    np.testing.assert_allclose(meta.step_times(3), [8 / 30, 12 / 30, 16 / 30])
    assert meta.duration(22) == pytest.approx((21 * 4 + 16) / 30)


def test_grid_times_and_steps_round_trip():
    meta = FeatureMeta(fps=29.97, stride=8, window=16)
    steps = np.array([0.0, 1.5, 10.25, 400.0])
    np.testing.assert_allclose(meta.seconds_to_step(meta.step_to_seconds(steps)), steps)
    for n in range(1, 200, 7):  # the last window ends inside the video
        t = meta.num_steps(n)
        assert (t - 1) * meta.stride + meta.window <= max(n, meta.window)


def test_mismatches_name_each_setting():
    trained = FeatureMeta(fps=30.0, stride=4, window=16, streams=["rgb", "flow"], dims=[8, 8])
    assert trained.mismatches(FeatureMeta(dims=[8, 8])) == []
    assert trained.mismatches(FeatureMeta(stride=16)) == ["stride 4 in training, 16 here"]
    assert trained.mismatches(FeatureMeta(window=8)) == ["window 16 in training, 8 here"]
    assert trained.mismatches(FeatureMeta(fps=25.0)) == ["fps 30 in training, 25 here"]
    assert trained.mismatches(FeatureMeta(streams=["rgb"])) == [
        "stream(s) ['flow'] missing (streams here: ['rgb'])"
    ]
    assert trained.mismatches(FeatureMeta(dims=[8, 4])) == [
        "stream 'flow' 8-d in training, 4-d here"
    ]
    # a model may use a subset of the streams the features carry
    assert trained.restricted_to(["rgb"], [8]).mismatches(FeatureMeta(dims=[8, 4])) == []


def test_unsafe_video_id_refused(tmp_path):
    save_array(tmp_path, "v", np.ones((4, 2)))
    meta = read_meta(tmp_path)
    with pytest.raises(TalnetError, match="refusing unsafe file name '../evil'"):
        load_features(tmp_path, "../evil", meta)


def test_folders_layout_inferred_without_meta(tmp_path):
    save_array(tmp_path, "v", np.ones((4, 2)), stream="rgb")
    save_array(tmp_path, "v", np.zeros((4, 3)), stream="flow")
    meta = read_meta(tmp_path)
    assert (meta.layout, meta.dims) == ("folders", [2, 3])
