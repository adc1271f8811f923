"""`talnet visualize` end to end: files in, annotated video out, one-line errors."""

from __future__ import annotations

import json

import av
import pytest
from visualize_video_helpers import make_video

from talnet.cli.main import main
from talnet.io.types import Annotation, Detection
from talnet.visualize.timeline import build_lanes, panel_layout
from talnet.visualize.video import annotate_video


@pytest.fixture
def inputs(tmp_path):
    video = make_video(tmp_path / "video_test_1.mp4", 96, 64, 8, 2.0)
    dets = tmp_path / "det.json"
    dets.write_text(
        json.dumps(
            {
                "results": {
                    "video_test_1": [
                        {"label": "Diving", "score": 0.3, "segment": [0.2, 0.9]},
                        {"label": "CliffDiving", "score": 0.9, "segment": [0.5, 1.5]},
                        {"label": "Shotput", "score": 0.05, "segment": [1.0, 1.9]},
                    ],
                    "other": [],
                }
            }
        )
    )
    gt = tmp_path / "gt.json"
    gt.write_text(
        json.dumps(
            {
                "database": {
                    "video_test_1": {
                        "subset": "test",
                        "duration": 2.0,
                        "annotations": [{"label": "CliffDiving", "segment": [0.6, 1.4]}],
                    }
                }
            }
        )
    )
    return video, dets, gt


def test_cli_writes_the_annotated_video(inputs, tmp_path, capsys):
    video, dets, gt = inputs
    out = tmp_path / "out" / "annotated.mp4"
    args = ["visualize", "--video", str(video), "--predictions", str(dets)]
    args += ["--ground-truth", str(gt), "--min-score", "0.1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert "16 frames" in capsys.readouterr().out
    # Ground truth + the two detections scoring at least 0.1: three lanes.
    lanes = build_lanes(
        [Detection("CliffDiving", 0.5, 1.5, 0.9), Detection("Diving", 0.2, 0.9, 0.3)],
        [Annotation("CliffDiving", 0.6, 1.4)],
    )
    assert len(lanes) == 3
    layout = panel_layout(96, 64, 2.0, lanes)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.width == 96
        assert stream.codec_context.height == 64 + layout.height
        assert sum(1 for _ in container.decode(video=0)) == 16


def test_cli_unknown_video_id_is_one_line_error(inputs, tmp_path, capsys):
    video, dets, _ = inputs
    out = tmp_path / "annotated.mp4"
    args = ["visualize", "--video", str(video), "--predictions", str(dets)]
    assert main([*args, "--video-id", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("talnet: error:") and "det.json" in err and "'nope'" in err
    assert "\n" not in err
    assert not out.exists()


def test_cli_missing_video_names_the_file(inputs, tmp_path, capsys):
    _, dets, _ = inputs
    args = ["visualize", "--video", str(tmp_path / "gone.mp4"), "--predictions", str(dets)]
    assert main([*args, "--out", str(tmp_path / "o.mp4")]) == 2
    assert "gone.mp4: video not found" in capsys.readouterr().err


def test_stem_fallback_and_unknown_ground_truth_video_warn(inputs, tmp_path):
    video, _, gt = inputs
    renamed = video.rename(tmp_path / "renamed.mp4")
    dets = tmp_path / "one.json"
    one = {"label": "Diving", "score": 0.5, "segment": [0.2, 0.9]}
    dets.write_text(json.dumps({"results": {"video_test_1": [one]}}))
    gt.write_text(json.dumps({"database": {"elsewhere": {"subset": "test", "annotations": []}}}))
    with pytest.warns(UserWarning) as caught:
        result = annotate_video(renamed, dets, tmp_path / "o.mp4", gt, progress=False)
    messages = " | ".join(str(w.message) for w in caught)
    assert "using its only video 'video_test_1'" in messages
    assert "ground-truth lane left empty" in messages
    assert result.layout.n_lanes == 2  # an empty ground-truth lane and the one detection
