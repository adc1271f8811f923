"""`talnet extract` end to end: shapes, the step rule, meta.json, weights, bad videos, layouts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from video_factory import (
    flow_sequence,
    make_audio_only,
    make_empty_video,
    make_video,
    read_frames,
    save_random_i3d_weights,
    truncate,
)

from talnet.cli.main import main
from talnet.errors import TalnetError
from talnet.io.feature_folder import parse_shard, shard_from_env, shard_videos
from talnet.io.features import FeatureMeta, read_meta_file, write_meta
from talnet.video.collect import collect_videos
from talnet.video.decode import DecodeOptions
from talnet.video.extract import extract_dataset, extract_video_features
from talnet.video.i3d import InceptionI3d
from talnet.video.options import ExtractOptions
from talnet.video.pipeline import Extractor
from talnet.video.windows import Windows

# Tiny frames and few windows keep I3D cheap on the CPU; the pipeline is the same as at 224.
FAST = ["--size", "32", "--resize", "0", "--stride", "16", "--flow", "dis", "--quiet"]
FAST += ["--workers", "1", "--threads", "1"]  # one torch thread: no spin-wait thrashing


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random I3D weights saved in the public layout, one file per stream."""
    return save_random_i3d_weights(tmp_path_factory.mktemp("weights"))


def num_steps(n_frames: int, window: int, stride: int) -> int:
    """The step rule, as FeatureMeta (docs/design.md §2) states it."""
    return FeatureMeta(window=window, stride=stride).num_steps(n_frames)


def test_windows_from_uneven_chunks_match_slicing():
    frames = np.arange(50)[:, None]
    windows = Windows(16, 4)
    got = []
    for part in np.split(frames, [3, 20, 21, 37]):
        got.extend(w.copy() for w in windows.push(part))
    got.extend(windows.finish())
    expected = [frames[s : s + 16] for s in range(0, 50 - 16 + 1, 4)]
    assert len(got) == num_steps(50, 16, 4) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_short_video_window_is_padded_with_last_frame():
    windows = Windows(16, 4)
    assert list(windows.push(np.arange(5)[:, None])) == []
    (padded,) = list(windows.finish())
    np.testing.assert_array_equal(padded[:, 0], [0, 1, 2, 3, 4] + [4] * 11)


def test_refuses_without_weights(tmp_path, capsys):
    video = make_video(tmp_path / "v.mp4", seconds=0.5)
    code = main(["extract", str(video), "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no I3D rgb weights" in err and "--random-weights" in err
    assert not (tmp_path / "f").exists()


def test_extract_with_weight_files_matches_the_model(tmp_path, weights, capsys):
    long = make_video(tmp_path / "long.mp4", seconds=2.0, fps=25)  # 60 frames at 30 fps
    short = make_video(tmp_path / "short.mkv", seconds=0.4, fps=25, codec="mpeg4")  # 12 frames
    out = tmp_path / "feats"
    args = ["extract", str(long), str(short), "--out", str(out), *FAST]
    code = main([*args, "--i3d-rgb", str(weights["rgb"]), "--i3d-flow", str(weights["flow"])])
    assert code == 0, capsys.readouterr().err
    assert "extracted 2 video(s)" in capsys.readouterr().out

    meta = read_meta_file(out)
    assert (meta.fps, meta.stride, meta.window, meta.layout) == (30.0, 16, 16, "concat")
    assert meta.streams == ["rgb", "flow"] and meta.dims == [1024, 1024]
    assert meta.extra["flow_method"] == "dis" and meta.extra["random_weights"] is False
    assert meta.extra["weights"]["rgb"]["file"] == "rgb_imagenet.pt"

    options = DecodeOptions(fps=30, size=32, short_side=None)
    models = {s: _model(weights[s], c) for s, c in (("rgb", 3), ("flow", 2))}
    for video, steps in ((long, 3), (short, 1)):
        feats = np.load(out / f"{video.stem}.npy")
        frames = read_frames(video, options)
        assert feats.shape == (steps, 2048) == (num_steps(len(frames), 16, 16), 2048)
        assert feats.dtype == np.float32 and np.isfinite(feats).all()
        # The last step by hand: its window of frames (padded if short) and the flow alongside.
        start = (steps - 1) * 16
        idx = np.minimum(np.arange(start, start + 16), len(frames) - 1)
        rgb_in = torch.from_numpy(frames[idx]).float() / 127.5 - 1
        flow_in = torch.from_numpy(flow_sequence(frames, "dis")[idx])
        with torch.inference_mode():
            expect_rgb = models["rgb"].extract_features(_clip(rgb_in))[0].numpy()
            expect_flow = models["flow"].extract_features(_clip(flow_in))[0].numpy()
        np.testing.assert_allclose(feats[-1, :1024], expect_rgb, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(feats[-1, 1024:], expect_flow, rtol=1e-3, atol=1e-4)


def _model(path, channels):
    model = InceptionI3d(num_classes=400, in_channels=channels)
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    return model.eval()


def _clip(frames):
    """(T, H, W, C) -> (1, C, T, H, W)."""
    return frames.permute(3, 0, 1, 2)[None]


def test_bad_videos_each_reported_others_extracted(tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    make_video(folder / "good.mp4", seconds=0.6)
    make_video(folder / "vfr.mp4", frame_times=[0.0, 0.05, 0.3, 0.32, 0.6], fps=25)
    bad = {
        "sound.mp4": ("no video stream", make_audio_only(folder / "sound.mp4")),
        "empty.avi": ("zero decodable", make_empty_video(folder / "empty.avi")),
        "cut.mkv": ("truncated", truncate(make_video(folder / "cut.mkv", 4, codec="mpeg4"))),
        "junk.webm": ("unreadable", folder / "junk.webm"),
    }
    (folder / "junk.webm").write_bytes(b"this is not a video" * 100)
    (folder / "notes.txt").write_text("not a video")
    out = tmp_path / "feats"
    code = main(["extract", str(folder), "--out", str(out), "--random-weights", *FAST])
    captured = capsys.readouterr()
    assert code == 1
    assert "RANDOM I3D WEIGHTS" in captured.err
    for name, (reason, _) in bad.items():
        lines = [line for line in captured.err.splitlines() if name in line and reason in line]
        assert len(lines) == 1, (name, captured.err)
        assert any(name in line and reason in line for line in captured.out.splitlines())
    assert "notes.txt: skipped: not a video extension" in captured.err
    assert "extracted 2 video(s)" in captured.out and "4 FAILED" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["good.npy", "meta.json", "vfr.npy"]
    assert read_meta_file(out).extra["random_weights"] is True
    assert np.load(out / "vfr.npy").shape == (num_steps(19, 16, 16), 2048)


def test_folders_layout_and_rgb_only(tmp_path):
    video = make_video(tmp_path / "clip.mp4", seconds=1.0)
    out = tmp_path / "feats"
    code = main(
        ["extract", str(video), "--out", str(out), "--random-weights", "--layout", "folders"]
        + ["--streams", "rgb", *FAST]
    )
    assert code == 0
    assert np.load(out / "rgb" / "clip.npy").shape == (num_steps(30, 16, 16), 1024)
    assert not (out / "flow").exists()
    assert json.loads((out / "meta.json").read_text())["streams"] == ["rgb"]


def test_settings_mismatch_with_existing_folder_is_refused(tmp_path):
    video = make_video(tmp_path / "clip.mp4", seconds=0.5)
    out = tmp_path / "feats"
    write_meta(out, ExtractOptions(stride=4, random_weights=True).meta())
    options = ExtractOptions(stride=8, random_weights=True)
    with pytest.raises(TalnetError, match="stride"):
        extract_dataset([video], out, options, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json"]


def test_weight_files_are_hashed_once_per_options(tmp_path, weights, monkeypatch):
    import talnet.video.options as options_module

    calls = []
    real = options_module.weight_file_id
    monkeypatch.setattr(options_module, "weight_file_id", lambda p: calls.append(p) or real(p))
    options = ExtractOptions(rgb_weights=weights["rgb"], streams=("rgb",))
    first, second = options.meta(), options.meta()
    assert first == second and first.extra["weights"]["rgb"]["file"] == "rgb_imagenet.pt"
    assert calls == [weights["rgb"]]


def test_named_weights_convert_on_first_use_not_when_options_are_built(weights, monkeypatch):
    import talnet.video.options as options_module

    calls = []
    monkeypatch.setattr(
        options_module, "resolve_named_weights", lambda p: calls.append(p) or weights["rgb"]
    )
    options = ExtractOptions(rgb_weights=Path("kinetics400"), streams=("rgb",))
    assert calls == [] and options.weights("rgb") == Path("kinetics400")
    assert options.weight_file("rgb") == options.weight_file("rgb") == weights["rgb"]
    assert calls == [Path("kinetics400")]
    assert options.meta().extra["weights"]["rgb"]["file"] == "rgb_imagenet.pt"
    with pytest.raises(TalnetError, match="InceptionV3 weight file not found"):  # I3D's name only
        ExtractOptions(backbone="inceptionv3", rgb_weights=Path("kinetics400"))


def test_options_from_meta_reproduce_the_recorded_settings(weights):
    made = ExtractOptions(
        fps=25.0, stride=8, window=12, flow="dis", streams=("flow",), layout="folders", size=112,
        short_side=None, flow_weights=weights["flow"],
    )  # fmt: skip
    again = ExtractOptions.from_meta(made.meta(), flow_weights=weights["flow"], batch=2)
    assert again.meta() == made.meta()
    assert again.batch == 2
    # Features another tool made record only the grid: the rest are ExtractOptions' defaults.
    plain = ExtractOptions.from_meta(FeatureMeta(stride=16, streams=["rgb", "audio"]),
                                     random_weights=True)  # fmt: skip
    assert (plain.stride, plain.streams, plain.flow, plain.size) == (16, ("rgb",), "tvl1", 224)
    assert plain.short_side == 256


def test_cli_defaults_are_the_options_defaults(capsys):
    from talnet.cli.extract import extract_options
    from talnet.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["extract", "v.mp4", "--out", "f", "--random-weights"])
    assert extract_options(args) == ExtractOptions(random_weights=True)
    assert args.quiet is False
    args = parser.parse_args(["extract", "v.mp4", "--out", "f", "--no-progress", "--resize", "0"])
    assert args.quiet is True  # the old name of --quiet still works
    assert extract_options(args, random_weights=True).short_side is None
    with pytest.raises(SystemExit):
        parser.parse_args(["extract", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    assert "--quiet" in text and "--no-progress" not in text
    assert "(default 30)" in text and "(default 256)" in text and "(default rgb,flow)" in text


def test_collect_videos(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_video(tmp_path / "a" / "x.mp4", seconds=0.2)
    make_video(tmp_path / "b" / "x.mkv", seconds=0.2, codec="mpeg4")
    (tmp_path / "a" / "readme.md").write_text("hi")
    found = collect_videos([tmp_path / "a"])
    assert [p.name for p in found.videos] == ["x.mp4"]
    assert [p.name for p, _ in found.ignored] == ["readme.md"]
    with pytest.raises(TalnetError, match="share the id 'x'"):
        collect_videos([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(TalnetError, match="no such file"):
        collect_videos([tmp_path / "nope"])


def test_library_function_returns_features_and_meta(tmp_path):
    video = make_video(tmp_path / "v.mp4", seconds=1.0)
    options = ExtractOptions(
        stride=8, size=32, short_side=None, flow="dis", random_weights=True, threads=1, workers=1
    )
    with Extractor(options) as extractor:
        feats, meta = extract_video_features(video, extractor=extractor)
        assert set(feats) == {"rgb", "flow"}
        assert feats["rgb"].shape == feats["flow"].shape == (num_steps(30, 16, 8), 1024)
        assert meta.stride == 8 and meta.extra["n_frames"] == 30
        with pytest.raises(TalnetError, match="no video stream"):
            extract_video_features(make_audio_only(tmp_path / "a.mp4"), extractor=extractor)
        # each call's decoder process is warmed by the one before, errors included
        again, _ = extract_video_features(video, extractor=extractor)
        assert all(np.array_equal(again[s], feats[s]) for s in feats)
        warm = extractor._decoder.process
        assert warm.is_alive()
    warm.join(timeout=10)
    assert not warm.is_alive() and extractor._decoder is None  # close() stops the warm one


def test_shards_cover_every_video_once(tmp_path):
    for i in range(5):
        make_video(tmp_path / "videos" / f"v{i}.mp4", seconds=0.3)
    out = tmp_path / "feats"
    seen = []
    for k in range(2):
        before = set(out.glob("*.npy"))
        args = ["extract", str(tmp_path / "videos"), "--out", str(out), "--random-weights"]
        assert main([*args, "--streams", "rgb", "--shard", f"{k}/2", *FAST]) == 0
        seen.append({p.stem for p in set(out.glob("*.npy")) - before})
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == {f"v{i}" for i in range(5)}
    assert all(seen)


def test_shard_selection():
    videos = [Path(f"/v/{name}.mp4") for name in "edcba"]
    parts = [shard_videos(videos, (k, 3)) for k in range(3)]
    assert sorted(p.stem for part in parts for p in part) == list("abcde")
    assert [p.stem for p in parts[0]] == ["a", "d"]
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "3"}) == (2, 3)
    assert shard_from_env({}) is None
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(TalnetError, match="shard"):
            parse_shard(bad)


# `talnet extract`, but it writes the first video in full, then stops for good halfway through
# the second one's atomic write and says so: the kill then lands at a known point, whatever the
# machine's speed, leaving one finished output and one temporary file.
_STOP_IN_SECOND_WRITE = """
import sys, threading
from pathlib import Path

import numpy as np

import talnet.io.feature_folder as folder
from talnet.cli.main import main
from talnet.io.atomic import atomic_path

real_save_array, saved = folder.save_array, []


def save_array(feat_dir, video_id, array, stream=None):
    saved.append(video_id)
    if len(saved) == 1:
        return real_save_array(feat_dir, video_id, array, stream)
    with atomic_path(Path(feat_dir) / f"{video_id}.npy", suffix=".npy") as tmp:
        np.save(tmp, array)
        print("writing", video_id, flush=True)
        threading.Event().wait()  # until killed


folder.save_array = save_array
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_kill(tmp_path):
    for i in range(5):
        make_video(tmp_path / "videos" / f"v{i}.mp4", seconds=0.5)
    out = tmp_path / "feats"
    args = ["extract", str(tmp_path / "videos"), "--out", str(out), "--random-weights"]
    args += ["--streams", "rgb", *FAST]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", _STOP_IN_SECOND_WRITE, *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,  # its own process group, so the kill takes its workers too
        )
    # Only a guard against a hung child (it would make readline return EOF); not a time limit
    # on what the test checks.
    watchdog = threading.Timer(600, os.killpg, (proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        line = proc.stdout.readline()
    finally:
        watchdog.cancel()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert line == "writing v1\n", (tmp_path / "stderr.txt").read_text()
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("v*.npy")}
    assert list(finished) == ["v0.npy"]
    assert [p.name.split(".")[1:3] for p in out.glob(".*")] == [["v1", "npy"]]  # the temporary

    assert main(args) == 0
    outputs = sorted(p.name for p in out.iterdir())
    assert outputs == ["meta.json"] + [f"v{i}.npy" for i in range(5)]  # no temporaries left
    assert (out / "v0.npy").stat().st_mtime_ns == finished["v0.npy"]  # not recomputed
    for i in range(5):
        assert np.load(out / f"v{i}.npy").shape == (num_steps(15, 16, 16), 1024)
