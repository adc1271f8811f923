import numpy as np
import pytest

from talnet.errors import TalnetError
from talnet.io.features import (
    FeatureMeta,
    list_feature_videos,
    load_features,
    read_meta,
    save_array,
    steps_duration,
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
    assert steps_duration(4, meta) == pytest.approx((3 * 8 + 16) / 25.0)


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
