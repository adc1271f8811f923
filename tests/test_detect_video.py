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
    """--precision int8 features are near fp32's: no refusal, no warning, same-sized output
    (the features' shape; as many detections as fp32's, of the same classes, at the same
    places; detect_videos giving what extract-then-detect gives)."""
    import dataclasses

    from talnet.detect import detect_videos
    from talnet.detect.detector import Detector
    from talnet.detect.video import check_fits
    from talnet.video.extract import extract_video_features
    from talnet.video.options import ExtractOptions

    video = make_video(tmp_path / "a.mp4", seconds=1.2, fps=25)  # 36 frames: 2 steps
    ckpt = _checkpoint(tmp_path / "c.pt")
    detector = Detector.from_checkpoint(ckpt)
    options = ExtractOptions.from_meta(
        detector.expected_meta, random_weights=True, precision="int8", workers=1, threads=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_fits(detector, options, ckpt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = detect_videos(detector, [video], options, progress=False)
        int8, int8_meta = extract_video_features(video, options)
        found = detector.detect(int8, int8_meta)  # the int8 grid is the checkpoint's: no refusal
    # (torch may warn about its quantized tensors; talnet's fit check must not warn)
    assert [w for w in caught if "detections may be worse" in str(w.message)] == []
    assert report.failed == [] and list(report.detections) == ["a"]
    assert report.detections["a"] == found

    fp32, _ = extract_video_features(video, dataclasses.replace(options, precision="fp32"))
    assert {s: a.shape for s, a in int8.items()} == {s: a.shape for s, a in fp32.items()}
    assert {s: a.shape for s, a in int8.items()} == {"rgb": (2, 1024), "flow": (2, 1024)}
    for stream in int8:  # per step, near fp32's: the same direction and about the same size
        a, b = int8[stream], fp32[stream]
        norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        assert ((a * b).sum(1) / (norm_a * norm_b)).min() > 0.99, stream
        assert 0.8 < (norm_a / norm_b).min() <= (norm_a / norm_b).max() < 1.25, stream
    expected = detector.detect(fp32)
    assert len(found) == len(expected) > 0

    # int8 features are near fp32's, so are the detections made of them
    def by_place(dets):
        return sorted(dets, key=lambda d: (d.label, d.start))

    for got, want in zip(by_place(found), by_place(expected), strict=True):
        assert got.label == want.label
        want_values = (want.start, want.end, want.score)
        assert (got.start, got.end, got.score) == pytest.approx(want_values, abs=0.02)
