"""`talnet detect --video`: extraction and detection in one step, on a tiny real video."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from model_factory import tiny_config
from video_factory import make_video, save_random_i3d_weights

from talnet.cli.main import main
from talnet.io.features import FeatureMeta, save_array, write_meta
from talnet.io.results import load_detections
from talnet.model.checkpoint import model_state, save_checkpoint
from talnet.model.talnet import TalNet

CLASSES = ["jump", "run"]
# Tiny frames, one clip per 16 frames, DIS flow and one thread keep I3D to seconds on the CPU.
FAST = ["--quiet", "--workers", "1", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _checkpoint(path, dim: int = 1024):
    """An untrained tiny TAL-Net on `dim`-d rgb and flow, whose training features were made by
    `talnet extract --stride 16 --size 32 --resize 0 --flow dis` (as its meta records)."""
    torch.manual_seed(0)
    cfg = tiny_config()
    model = TalNet({"rgb": dim, "flow": dim}, len(CLASSES), cfg)
    extra = {"backbone": "i3d", "flow_method": "dis", "frame_size": 32, "resize_short_side": None}
    meta = FeatureMeta(stride=16, dims=[dim, dim], extra=extra)
    save_checkpoint(path, model_state(model, cfg, CLASSES, meta))
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random I3D weights saved in the public layout, one file per stream."""
    return save_random_i3d_weights(tmp_path_factory.mktemp("weights"))


def test_detect_video_writes_results_and_reports_bad_videos(tmp_path, weights, capsys):
    video = make_video(tmp_path / "clip one.mp4", seconds=1.2, fps=25)  # 36 frames: 2 steps
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    ckpt = _checkpoint(tmp_path / "checkpoint.pt")
    out = tmp_path / "dets.json"
    args = ["detect", "--video", str(video), str(broken), "--checkpoint", str(ckpt)]
    args += ["--i3d-rgb", str(weights["rgb"]), "--i3d-flow", str(weights["flow"])]
    code = main([*args, "--out", str(out), "--max-detections", "7", *FAST])
    captured = capsys.readouterr()
    assert code == 1, captured.err  # one video failed
    failed = [line for line in captured.err.splitlines() if "broken.mp4" in line]
    assert len(failed) == 1 and "clip one" not in failed[0]
    assert "1 video(s) FAILED" in captured.out

    dets = load_detections(out)
    assert list(dets) == ["clip one"]
    length_s = (16 + 16) / 30  # two windows at stride 16
    assert 0 < len(dets["clip one"]) <= 7
    assert all(d.label in CLASSES and 0 <= d.start < d.end <= length_s + 1e-6
               for d in dets["clip one"])  # fmt: skip
    assert json.loads(out.read_text())["version"] == "talnet"


def test_detect_video_refuses_features_the_checkpoint_was_not_trained_on(tmp_path, capsys):
    video = make_video(tmp_path / "v.mp4", seconds=0.5)
    ckpt = _checkpoint(tmp_path / "small.pt", dim=8)
    out = tmp_path / "dets.json"
    args = ["detect", "--video", str(video), "--checkpoint", str(ckpt), "--random-weights"]
    code = main([*args, "--stride", "4", "--out", str(out), *FAST])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists()
    error = [line for line in err if line.startswith("talnet: error:")]
    assert len(error) == 1 and str(ckpt) in error[0]
    assert "stream 'rgb' 8-d in training, 1024-d here" in error[0]
    assert "stride 16 in training, 4 here" in error[0]


def test_detect_features_path_still_works_and_flags_must_match_the_source(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "c.pt")
    feats, out = tmp_path / "feats", tmp_path / "d.json"
    write_meta(feats, FeatureMeta(stride=16, dims=[1024, 1024]))
    save_array(feats, "v1", np.random.default_rng(0).normal(size=(40, 2048)).astype(np.float32))
    base = ["detect", "--features", str(feats), "--checkpoint", str(ckpt), "--out", str(out)]
    assert main([*base, "--quiet"]) == 0
    assert list(load_detections(out)) == ["v1"]
    out.unlink()
    assert main([*base, "--stride", "16"]) == 2
    assert "--stride only apply with --video" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --features and --video are exclusive
        main([*base, "--video", "v.mp4"])
    assert not out.exists()


def test_detect_videos_api_equals_extract_then_detect(tmp_path):
    from talnet.detect import detect_videos
    from talnet.detect.detector import Detector
    from talnet.video.extract import extract_video_features
    from talnet.video.options import ExtractOptions

    video = make_video(tmp_path / "a.mkv", seconds=0.6, codec="mpeg4")  # one padded window
    detector = Detector.from_checkpoint(_checkpoint(tmp_path / "c.pt"))
    options = ExtractOptions(stride=16, size=32, short_side=None, flow="dis", random_weights=True,
                             workers=1, threads=1)  # fmt: skip
    report = detect_videos(detector, [video], options, progress=False)
    assert report.failed == [] and list(report.detections) == ["a"]
    features, meta = extract_video_features(video, options)
    assert report.detections["a"] == detector.detect(features, meta)


def test_settings_that_differ_from_training_warn(tmp_path):
    from talnet.detect.detector import Detector
    from talnet.detect.video import check_fits
    from talnet.video.options import ExtractOptions

    ckpt = _checkpoint(tmp_path / "c.pt")
    detector = Detector.from_checkpoint(ckpt)
    recorded = ExtractOptions.from_meta(detector.expected_meta, random_weights=True)
    got = (recorded.fps, recorded.stride, recorded.window, recorded.streams, recorded.flow)
    assert got == (30.0, 16, 16, ("rgb", "flow"), "dis")
    assert (recorded.size, recorded.short_side) == (32, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_fits(detector, recorded, ckpt)  # the checkpoint's own settings fit, silently
    options = ExtractOptions(stride=16, size=32, short_side=None, flow="tvl1", random_weights=True)
    with pytest.warns(UserWarning, match="flow_method dis, extracting with tvl1"):
        check_fits(detector, options, ckpt)


def test_int8_extraction_feeds_a_checkpoint_trained_on_fp32_features(tmp_path):
    """--precision int8 features are near fp32's: no refusal, no warning, same-sized output."""
    from talnet.detect import detect_videos
    from talnet.detect.detector import Detector
    from talnet.detect.video import check_fits
    from talnet.video.options import ExtractOptions

    video = make_video(tmp_path / "a.mp4", seconds=1.2, fps=25)
    ckpt = _checkpoint(tmp_path / "c.pt")
    detector = Detector.from_checkpoint(ckpt)
    options = ExtractOptions.from_meta(
        detector.expected_meta, random_weights=True, precision="int8", workers=1, threads=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_fits(detector, options, ckpt)
    report = detect_videos(detector, [video], options, progress=False)
    assert report.failed == [] and 0 < len(report.detections["a"])
