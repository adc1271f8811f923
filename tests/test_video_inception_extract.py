"""`talnet extract --backbone inceptionv3`: one RGB frame per feature step (the middle of its
window) through InceptionV3, (T, 2048) features on the I3D grid, and TAL-Net on them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from model_factory import tiny_config
from video_factory import make_video, read_frames

from talnet.cli.main import main
from talnet.config import save_config
from talnet.io.features import FeatureMeta, load_features, read_meta, read_meta_file
from talnet.io.results import load_detections
from talnet.video.decode import DecodeOptions
from talnet.video.extract import extract_video_features
from talnet.video.options import ExtractOptions
from talnet.video.weights import random_inception_v3
from talnet.video.windows import CentreFrames, centre_frames

# A small grid keeps InceptionV3 to a few dozen 75x75 frames (its smallest input): 10 fps,
# 4-frame windows every 2 frames, so a 4 s video gives 19 steps.
FPS, WINDOW, STRIDE, SIZE = 10, 4, 2, 75
GRID = ["--fps", str(FPS), "--window", str(WINDOW), "--stride", str(STRIDE)]
FAST = [*GRID, "--size", str(SIZE), "--resize", "0", "--quiet", "--threads", "1"]
V3 = ["--backbone", "inceptionv3"]
SECONDS = {"a": 4.0, "b": 3.0}
N_FRAMES = {vid: round(s * FPS) for vid, s in SECONDS.items()}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {vid: make_video(folder / f"{vid}.mp4", seconds=s, fps=25) for vid, s in SECONDS.items()}


@pytest.fixture(scope="module")
def feats(videos, tmp_path_factory):
    """Both videos extracted with `--backbone inceptionv3 --random-weights`."""
    out = tmp_path_factory.mktemp("run") / "feats"
    torch.set_num_threads(1)
    code = main(["extract", str(videos["a"].parent), "--out", str(out), *V3, *FAST,
                 "--random-weights"])  # fmt: skip
    assert code == 0
    return out


@pytest.mark.parametrize(
    ("n", "window", "stride"),
    [(40, 4, 2), (60, 16, 4), (63, 15, 4), (16, 16, 4), (5, 16, 4), (1, 16, 4), (50, 8, 16)],
)
def test_each_step_samples_the_middle_frame_of_its_window(n, window, stride):
    meta = FeatureMeta(fps=30.0, window=window, stride=stride)
    got = centre_frames(n, window, stride)
    assert len(got) == meta.num_steps(n)
    for i, k in enumerate(got):
        start = i * stride
        if n >= window:  # a full window: its middle frame, on screen at the step's time
            assert k == start + window // 2 and start <= k < start + window
            assert k <= meta.step_times(len(got))[i] * meta.fps < k + 1
        else:  # the one padded window of a short video: its middle is the last real frame
            assert k == min(window // 2, n - 1)
    # Streamed in uneven chunks, the pipeline's selection is the same frames.
    frames = np.arange(n)[:, None]
    picker = CentreFrames(window, stride)
    streamed = []
    for part in np.array_split(frames, [3, 7, 8, 30]):
        streamed.extend(int(f[0]) for f in picker.push(part))
    streamed.extend(int(f[0]) for f in picker.finish())
    assert streamed == got.tolist()


def test_extract_gives_one_2048_d_rgb_feature_per_step(feats, videos):
    meta = read_meta_file(feats)
    assert meta.streams == ["rgb"] and meta.dims == [2048] and meta.layout == "concat"
    assert (meta.fps, meta.window, meta.stride) == (FPS, WINDOW, STRIDE)
    extra = meta.extra
    assert extra["backbone"] == "inceptionv3" and extra["flow_method"] is None
    assert extra["weights"] == {"rgb": None} and extra["random_weights"] is True
    assert extra["frame_size"] == SIZE and "i*stride + window // 2" in extra["frame_rule"]
    for vid in SECONDS:
        arr = np.load(feats / f"{vid}.npy")
        assert arr.shape == (meta.num_steps(N_FRAMES[vid]), 2048) and arr.dtype == np.float32
        assert np.isfinite(arr).all() and arr.std() > 0
    # The same video and grid through I3D give as many steps.
    i3d = ExtractOptions(streams=("rgb",), size=32, short_side=None, random_weights=True,
                         fps=FPS, window=WINDOW, stride=STRIDE, threads=1)  # fmt: skip
    got, _ = extract_video_features(videos["a"], i3d)
    assert got["rgb"].shape[0] == np.load(feats / "a.npy").shape[0] == 19


def test_each_feature_is_inceptionv3_on_its_steps_centre_frame(feats, videos):
    frames = read_frames(videos["b"], DecodeOptions(fps=FPS, size=SIZE, short_side=None))
    picked = frames[centre_frames(len(frames), WINDOW, STRIDE)]
    x = torch.from_numpy(picked).float().div(127.5).sub(1.0).permute(0, 3, 1, 2)
    with torch.inference_mode():
        expected = random_inception_v3().eval().extract_features(x).numpy()
    np.testing.assert_allclose(np.load(feats / "b.npy"), expected, rtol=1e-3, atol=1e-4)


def test_weight_file_loads_strictly_and_is_recorded(feats, videos, tmp_path):
    path = tmp_path / "inception_v3_google-0cc3c7bd.pth"
    torch.save(random_inception_v3().state_dict(), path)  # torchvision's layout, AuxLogits too
    options = ExtractOptions(backbone="inceptionv3", rgb_weights=path, size=SIZE, short_side=None,
                             fps=FPS, window=WINDOW, stride=STRIDE, threads=1)  # fmt: skip
    got, meta = extract_video_features(videos["b"], options)
    assert meta.extra["weights"]["rgb"]["file"] == path.name
    assert meta.extra["random_weights"] is False and got["rgb"].shape == (14, 2048)
    # The file holds the seeded random weights, so the features are --random-weights' ones.
    np.testing.assert_allclose(got["rgb"], np.load(feats / "b.npy"), rtol=1e-5, atol=1e-6)


def _refused(capsys, args, *words):
    """Run the CLI; expect exit 2 and one error line holding `words` (warnings aside)."""
    capsys.readouterr()
    code = main(args)
    lines = [x for x in capsys.readouterr().err.splitlines() if not x.startswith("talnet: WARN")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("talnet: error: "), lines
    for word in words:
        assert word in lines[0], lines


def test_flow_and_wrong_weight_flags_are_refused(videos, tmp_path, capsys):
    out = tmp_path / "f"
    base = ["extract", str(videos["a"]), "--out", str(out), *FAST]
    _refused(capsys, [*base, *V3, "--random-weights", "--streams", "rgb,flow"], "rgb", "flow")
    _refused(capsys, [*base, *V3, "--i3d-rgb", str(videos["a"])], "--i3d-rgb", "--weights")
    _refused(capsys, [*base, "--weights", str(videos["a"]), "--random-weights"], "--weights")
    _refused(capsys, [*base, *V3], "no InceptionV3 weights", "inception_v3_google-0cc3c7bd.pth")
    small = [*base, *V3, "--random-weights", "--size", "32"]
    _refused(capsys, small, "at least 75x75")
    assert not out.exists()


def test_bad_weight_files_are_one_line_errors_naming_the_file(videos, tmp_path, capsys):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file at all")
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(10, 2048)}, wrong)
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    out = tmp_path / "f"
    base = ["extract", str(videos["b"]), "--out", str(out), *FAST, *V3]
    _refused(capsys, [*base, "--weights", str(garbage)], str(garbage), "cannot read InceptionV3")
    _refused(capsys, [*base, "--weights", str(wrong)], str(wrong), "not an InceptionV3 state dict")
    _refused(capsys, [*base, "--weights", str(listing)], str(listing), "not an InceptionV3")
    _refused(capsys, [*base, "--weights", str(tmp_path / "nope.pth")], "nope.pth", "not found")
    assert not out.exists()  # no meta.json or folder left behind


def test_talnet_trains_and_detects_on_inceptionv3_features(feats, videos, tmp_path, capsys):
    gt = tmp_path / "gt.json"
    database = {
        "a": {"subset": "validation", "duration": SECONDS["a"],
              "annotations": [{"label": "jump", "segment": [0.8, 2.4]}]},
        "b": {"subset": "validation", "duration": SECONDS["b"],
              "annotations": [{"label": "run", "segment": [1.0, 2.2]}]},
    }  # fmt: skip
    gt.write_text(json.dumps({"database": database}))
    config = tmp_path / "tiny.yaml"
    save_config(config, tiny_config(epochs=1))
    run = tmp_path / "run"
    code = main(["train", "--ground-truth", str(gt), "--features", str(feats), "--out", str(run),
                 "--config", str(config), "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert (run / "checkpoint.pt").exists()

    dets = tmp_path / "dets.json"
    code = main(["detect", "--checkpoint", str(run / "checkpoint.pt"), "--features", str(feats),
                 "--out", str(dets), "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    found = load_detections(dets)
    assert set(found) == {"a", "b"} and all(found.values())
    assert all(0 <= d.start < d.end <= SECONDS["a"] for d in found["a"])
    loaded = load_features(feats, "a", read_meta(feats))
    assert set(loaded) == {"rgb"} and loaded["rgb"].shape == (19, 2048)

    # On the video itself, the checkpoint's recorded backbone and grid are extracted again.
    ckpt = ["detect", "--checkpoint", str(run / "checkpoint.pt"), "--video", str(videos["a"])]
    direct = tmp_path / "direct.json"
    code = main([*ckpt, "--out", str(direct), "--random-weights", "--quiet", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert load_detections(direct) == {"a": found["a"]}
    # Another backbone than the training features' is refused before any work.
    refused = tmp_path / "refused.json"
    _refused(capsys, [*ckpt, "--out", str(refused), "--backbone", "i3d", "--random-weights"],
             "backbone inceptionv3 in training, i3d here")  # fmt: skip
    _refused(capsys, [*ckpt, "--out", str(refused), "--i3d-rgb", str(dets)], "--i3d-rgb")
    assert not refused.exists()
