"""The packed feature store (talnet/io/packed.py): one memory-mapped array per stream and an
index. Loads bit-exactly what the folder it was packed from loads, refuses a store whose parts
disagree, is written atomically by `talnet pack-features`, and feeds training without copies."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from model_factory import tiny_data

from talnet.cli.main import main
from talnet.data.dataset import TrainingData
from talnet.data.resample import resample_folder
from talnet.errors import TalnetError
from talnet.io.annotations import clip_for_training, load_ground_truth
from talnet.io.features import (
    FeatureMeta,
    feature_length,
    list_feature_videos,
    load_features,
    read_meta,
    save_array,
    write_meta,
)
from talnet.io.packed import open_store, pack_folder
from talnet.io.types import VideoInfo


def random_video(rng, steps, dims):
    return rng.normal(size=(steps, sum(dims))) * 10.0 ** rng.integers(-3, 4)


def concat_folder(root, seed=0, dims=(3, 5)):
    rng = np.random.default_rng(seed)
    meta = FeatureMeta(fps=25.0, stride=8, dims=list(dims), extra={"backbone": "i3d"})
    write_meta(root, meta)
    raw = json.loads((root / "meta.json").read_text())
    raw["note"] = "a key talnet does not know"
    (root / "meta.json").write_text(json.dumps(raw))
    for i, steps in enumerate((7, 1, 30, 12)):
        # float64 on disk, as other extractors write: both loads cast to float32
        np.save(root / f"vid_{i}.npy", random_video(rng, steps, dims))
    return root


def folders_folder(root, seed=1):
    """Stream folders under other names and no meta.json: streams and dims come from the files."""
    rng = np.random.default_rng(seed)
    for i, steps in enumerate((9, 2, 17)):
        save_array(root, f"v{i}", rng.normal(size=(steps, 4)), stream="rgb_i3d")
        save_array(root, f"v{i}", rng.normal(size=(steps, 6)), stream="flow_i3d")
    return root


def assert_same_features(src, packed):
    src_meta, packed_meta = read_meta(src), read_meta(packed)
    assert packed_meta.layout == "packed"
    for key in ("fps", "stride", "window", "streams", "dims", "resample_steps", "durations"):
        assert getattr(packed_meta, key) == getattr(src_meta, key), key
    videos = list_feature_videos(src, src_meta)
    assert list_feature_videos(packed, packed_meta) == videos
    for vid in videos:
        assert feature_length(packed, vid, packed_meta) == feature_length(src, vid, src_meta)
        want, got = load_features(src, vid, src_meta), load_features(packed, vid, packed_meta)
        assert list(got) == list(want)
        for stream in want:
            assert got[stream].dtype == np.float32 and got[stream].flags.c_contiguous
            assert got[stream].flags.writeable  # an array of its own, not the memory map
            assert got[stream].shape == want[stream].shape
            assert got[stream].tobytes() == want[stream].tobytes(), (vid, stream)
    return packed_meta


def test_concat_folder_round_trips_bit_exactly_and_keeps_meta_keys(tmp_path):
    src = concat_folder(tmp_path / "src")
    report = pack_folder(src, tmp_path / "out", progress=False)
    assert report.videos == ["vid_0", "vid_1", "vid_2", "vid_3"] and report.total_steps == 50
    meta = assert_same_features(src, tmp_path / "out")
    assert meta.extra["backbone"] == "i3d"
    before = json.loads((src / "meta.json").read_text())
    after = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert after == {**before, "layout": "packed"}  # every key kept, only the layout changed
    # the on-disk format: one (total, C) float32 array per stream, offsets in the index
    rgb = np.load(tmp_path / "out" / "packed" / "rgb.npy")
    assert rgb.shape == (50, 3) and rgb.dtype == np.float32
    index = json.loads((tmp_path / "out" / "packed" / "index.json").read_text())
    assert index["total_steps"] == 50
    assert index["videos"] == {
        "vid_0": [0, 7],
        "vid_1": [7, 1],
        "vid_2": [8, 30],
        "vid_3": [38, 12],
    }
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == [
        "flow.npy", "index.json", "meta.json", "packed", "rgb.npy",
    ]  # fmt: skip


def test_folders_without_meta_round_trip(tmp_path):
    src = folders_folder(tmp_path / "src")
    assert read_meta(src).streams == ["flow_i3d", "rgb_i3d"]
    pack_folder(src, tmp_path / "out", progress=False)
    meta = assert_same_features(src, tmp_path / "out")
    assert meta.dims == [6, 4]
    # a store can be packed again, and a restricted meta loads only its streams
    pack_folder(tmp_path / "out", tmp_path / "again", progress=False)
    assert_same_features(src, tmp_path / "again")
    rgb_only = meta.restricted_to(["rgb_i3d"], [4])
    assert list(load_features(tmp_path / "out", "v1", rgb_only)) == ["rgb_i3d"]


def test_resampled_folder_with_durations_round_trips(tmp_path):
    src = concat_folder(tmp_path / "src")
    gt = {f"vid_{i}": VideoInfo(f"vid_{i}", "training", 3.0 + i, None, []) for i in range(4)}
    resample_folder(src, tmp_path / "res", 16, gt, progress=False)
    pack_folder(tmp_path / "res", tmp_path / "out", progress=False)
    meta = assert_same_features(tmp_path / "res", tmp_path / "out")
    assert meta.resample_steps == 16 and meta.durations == {f"vid_{i}": 3.0 + i for i in range(4)}
    assert meta.extra["resampled"]["from"] == str(src)
    assert meta.for_video("vid_2").step_to_seconds(15.5) == 5.0


def test_resample_cli_writes_a_packed_store(tmp_path, capsys):
    src = concat_folder(tmp_path / "src")
    assert main(["resample-features", str(src), str(tmp_path / "res"), "--steps", "8",
                 "--quiet"]) == 0  # fmt: skip
    out = tmp_path / "out"
    assert main(["resample-features", str(src), str(out), "--steps", "8", "--quiet",
                 "--packed"]) == 0  # fmt: skip
    assert f"4 videos resampled to 8 steps -> {out}" in capsys.readouterr().out
    assert_same_features(tmp_path / "res", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "res", "src"]  # no debris


def packed_store(tmp_path):
    out = tmp_path / "out"
    pack_folder(concat_folder(tmp_path / "src"), out, progress=False)
    open_store(out)  # cached open: every change below must still be seen
    return out


def refused(root, match):
    with pytest.raises(TalnetError, match=match) as err:
        meta = read_meta(root)
        for vid in list_feature_videos(root, meta):
            load_features(root, vid, meta)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_meta_dims_disagreeing_with_the_arrays_refused_on_open(tmp_path):
    out = packed_store(tmp_path)
    raw = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**raw, "dims": [3, 4]}))
    message = refused(out, r"'dims' \[3, 4\] disagree with the arrays in packed/")
    assert message.startswith(f"{out / 'meta.json'}: ") and "rgb 3, flow 5 channels" in message


def test_meta_streams_disagreeing_with_the_arrays_refused(tmp_path):
    out = packed_store(tmp_path)
    raw = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**raw, "streams": ["rgb"], "dims": [3]}))
    message = refused(out, r"'streams' \['rgb'\] disagree with the arrays")
    assert message.startswith(f"{out / 'meta.json'}: ")


def test_missing_stream_array_refused(tmp_path):
    out = packed_store(tmp_path)
    (out / "packed" / "flow.npy").unlink()
    message = refused(out, "array of stream 'flow' missing")
    assert message.startswith(f"{out / 'packed' / 'flow.npy'}: ")


def test_missing_index_refused(tmp_path):
    out = packed_store(tmp_path)
    (out / "packed" / "index.json").unlink()
    assert refused(out, "index missing").startswith(f"{out / 'packed' / 'index.json'}: ")


def test_array_rows_disagreeing_with_the_index_refused(tmp_path):
    out = packed_store(tmp_path)
    rgb = np.load(out / "packed" / "rgb.npy")
    np.save(out / "packed" / "rgb.npy", rgb[:-1])
    message = refused(out, "49 rows, but index.json covers 50 steps")
    assert message.startswith(f"{out / 'packed' / 'rgb.npy'}: ")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"total_steps": 51}, "index entries cover 50 steps, 'total_steps' says 51"),
        ({"videos": {"vid_0": [0, 7], "vid_1": [8, 42]}}, "'vid_1' starts at row 8, expected 7"),
        ({"videos": {"vid_0": [0, 0], "vid_1": [0, 50]}}, r"'vid_0': index entry must be \["),
        ({"format": "other"}, "not a 'talnet-packed/1' index"),
    ],
)
def test_bad_index_refused(tmp_path, change, match):
    out = packed_store(tmp_path)
    path = out / "packed" / "index.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    assert refused(out, match).startswith(f"{path}: ")


def test_missing_index_entry_and_nan_named(tmp_path):
    out = packed_store(tmp_path)
    meta = read_meta(out)
    with pytest.raises(TalnetError) as err:
        load_features(out, "vid_9", meta)
    assert str(err.value) == f"{out / 'packed' / 'index.json'}: video 'vid_9': not in the " + (
        "packed store's index"
    )
    flow = np.load(out / "packed" / "flow.npy", mmap_mode="r+")
    flow[9, 2] = np.nan  # vid_2's step 1
    flow.flush()
    del flow
    load_features(out, "vid_1", meta)  # the other videos still load
    with pytest.raises(TalnetError) as err:
        load_features(out, "vid_2", meta)
    assert str(err.value) == (
        f"{out / 'packed' / 'flow.npy'}: video 'vid_2': 1 NaN/inf value(s) in 1 step(s), "
        "first at step 1"
    )


def test_pack_cli_writes_the_store_and_leaves_nothing_on_failure(tmp_path, capsys):
    src = concat_folder(tmp_path / "src")
    bad = np.ones((5, 8))
    bad[3, 6] = np.inf
    save_array(src, "vid_x", bad)
    out = tmp_path / "out"
    assert main(["pack-features", str(src), str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"talnet: error: {src / 'vid_x.npy'}: video 'vid_x': 1 NaN/inf value(s) in 1 step(s), "
        "first at step 3"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no partial output
    (src / "vid_x.npy").unlink()
    assert main(["pack-features", str(src), str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed == f"4 videos packed (50 steps, channels rgb 3 + flow 5) -> {out}\n"
    assert_same_features(src, out)
    assert main(["pack-features", str(src), str(out), "--quiet"]) == 2
    assert "output folder exists and is not empty" in capsys.readouterr().err
    assert main(["check", "--features", str(out)]) == 0
    assert "4 videos checked, layout packed, channels rgb 3 + flow 5" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["pack-features", "--help"])
    assert "example: talnet pack-features" in capsys.readouterr().out


def test_training_data_slices_the_memory_map_and_draws_the_same_crops(tmp_path):
    data = tiny_data(tmp_path / "data", train=4, test=1)
    pack_folder(data / "features", tmp_path / "packed", progress=False)
    gt = clip_for_training(load_ground_truth(data / "annotations.json", "validation"))
    folder = TrainingData(gt, data / "features", read_meta(data / "features"))
    packed = TrainingData(gt, tmp_path / "packed", read_meta(tmp_path / "packed"))
    assert packed._cache is None and folder._cache is not None
    assert [v.length for v in packed.videos] == [v.length for v in folder.videos]
    store = open_store(tmp_path / "packed")
    for i in range(len(packed)):  # views of the memory maps, no copy
        for stream, view in packed.features(i).items():
            assert np.shares_memory(view, store.arrays[stream]) and not view.flags.writeable
    max_steps = min(v.length for v in folder.videos) - 3  # every video is cropped
    gen_a, gen_b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's warning about a non-writable array
        for _ in range(3):
            for i in range(len(folder)):
                a, b = folder.crop(i, max_steps, gen_a), packed.crop(i, max_steps, gen_b)
                assert a.video_id == b.video_id
                assert torch.equal(a.segments, b.segments) and torch.equal(a.labels, b.labels)
                for stream, x in a.features.items():
                    y = b.features[stream]
                    assert y.dtype == torch.float32 and y.is_contiguous()
                    assert x.shape[0] == max_steps and x.numpy().tobytes() == y.numpy().tobytes()
    before = store.arrays[stream].tobytes()
    y.add_(1.0)  # a crop is the training step's own: the store is untouched
    assert store.arrays[stream].tobytes() == before
