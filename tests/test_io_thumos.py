import json
import warnings

import numpy as np
import pytest

from talnet.cli.main import main
from talnet.io.annotations import AMBIGUOUS, DataWarning, load_ground_truth, save_ground_truth
from talnet.io.features import FeatureMeta, save_array, write_meta
from talnet.io.thumos import convert_thumos
from talnet.io.types import Annotation, VideoInfo


def make_thumos(root):
    """A small handmade THUMOS'14 annotation folder (val and test in two subfolders)."""
    val, test = root / "val", root / "test"
    val.mkdir(parents=True)
    test.mkdir()
    # Official files use varying spacing, trailing blanks and blank lines.
    (val / "Diving_val.txt").write_text(
        "video_validation_0000001  1.0 2.5 \nvideo_validation_0000002\t10 12.5\n\n"
    )
    (val / "CliffDiving_val.txt").write_text("video_validation_0000001 1.0 2.5\n")
    (val / "Ambiguous_val.txt").write_text("video_validation_0000002 3.0 4.0\n")
    (test / "Diving_test.txt").write_text("video_test_0000003 0.5 1.5\n")
    (test / "Ambiguous_test.txt").write_text("video_test_0000004 2.0 6.0\n")
    (root / "readme.txt").write_text("not an annotation file\n")
    # Archives unpacked on macOS carry binary debris under annotation-like names.
    (root / "__MACOSX" / "val").mkdir(parents=True)
    (root / "__MACOSX" / "val" / "._Diving_val.txt").write_bytes(b"\x00\x05\x16\x07\xff")
    (val / "._Diving_val.txt").write_bytes(b"\x00\x05\x16\x07\xff")
    return root


def expected_gt(durations):
    def info(vid, subset, anns):
        duration, fps = durations.get(vid, (None, None))
        return VideoInfo(vid, subset, duration, fps, [Annotation(*a) for a in anns])

    return {
        "video_test_0000003": info("video_test_0000003", "test", [("Diving", 0.5, 1.5)]),
        "video_test_0000004": info("video_test_0000004", "test", [(AMBIGUOUS, 2.0, 6.0)]),
        "video_validation_0000001": info(
            "video_validation_0000001",
            "validation",
            [("CliffDiving", 1.0, 2.5), ("Diving", 1.0, 2.5)],
        ),
        "video_validation_0000002": info(
            "video_validation_0000002",
            "validation",
            [(AMBIGUOUS, 3.0, 4.0), ("Diving", 10.0, 12.5)],
        ),
    }


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kwargs)


def test_convert_with_durations_csv_round_trips(tmp_path):
    annot = make_thumos(tmp_path / "annot")
    csv_path = tmp_path / "durations.csv"
    csv_path.write_text(
        "video_id,duration,fps\n"
        "video_validation_0000001,30.0,30\nvideo_validation_0000002,60.5,25\n"
        "video_test_0000003,20.0,30\nvideo_test_0000004,40.0,\nvideo_unused,9.0,30\n"
    )
    durations = {
        "video_validation_0000001": (30.0, 30.0),
        "video_validation_0000002": (60.5, 25.0),
        "video_test_0000003": (20.0, 30.0),
        "video_test_0000004": (40.0, None),
    }
    gt = quiet(convert_thumos, annot, durations_csv=csv_path)
    assert gt == expected_gt(durations)
    # convert -> save -> load gives the same ground truth.
    save_ground_truth(tmp_path / "gt.json", gt)
    assert quiet(load_ground_truth, tmp_path / "gt.json") == gt
    assert set(quiet(load_ground_truth, tmp_path / "gt.json", "Validation")) == {
        "video_validation_0000001",
        "video_validation_0000002",
    }


def test_convert_warns_about_real_data_oddities(tmp_path):
    annot = make_thumos(tmp_path / "annot")
    with pytest.warns(DataWarning) as record:
        convert_thumos(annot)
    messages = [str(w.message) for w in record]
    assert any("no duration for 4 video(s)" in m for m in messages)
    assert any("'video_test_0000004': only Ambiguous" in m for m in messages)
    assert any("'video_validation_0000001': 1 instance(s)" in m for m in messages)


def test_convert_durations_from_features(tmp_path):
    annot = make_thumos(tmp_path / "annot")
    feats = tmp_path / "feats"
    write_meta(feats, FeatureMeta(fps=25.0, stride=4, window=16))
    for vid, steps in [("video_validation_0000001", 100), ("video_test_0000003", 50)]:
        save_array(feats, vid, np.zeros((steps, 4)))
    gt = quiet(convert_thumos, annot, features_dir=feats)
    assert gt["video_validation_0000001"].duration == pytest.approx((99 * 4 + 16) / 25.0)
    assert gt["video_validation_0000001"].fps == 25.0
    assert gt["video_test_0000003"].duration == pytest.approx((49 * 4 + 16) / 25.0)
    assert gt["video_test_0000004"].duration is None  # no features: left null (warned)


def test_cli_convert_thumos(tmp_path, capsys):
    annot = make_thumos(tmp_path / "annot")
    out = tmp_path / "out" / "gt.json"
    assert main(["convert-thumos", str(annot), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "4 videos (test 2, validation 2)" in captured.out
    assert "4 instances of 2 classes, 2 Ambiguous" in captured.out
    assert "talnet: warning:" in captured.err and "video_test_0000004" in captured.err
    assert quiet(load_ground_truth, out) == expected_gt({})
    assert json.loads(out.read_text())["database"]["video_test_0000003"]["subset"] == "test"


def run_bad(tmp_path, capsys, annot, *extra):
    """Run the CLI on bad input: exit 2, one error line, no output file left."""
    out = tmp_path / "gt.json"
    code = quiet(main, ["convert-thumos", str(annot), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert not out.exists()
    assert [line for line in err if "warning" not in line] == [err[-1]]
    return err[-1]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("video_a 1.0\n", "expected 'video_id start end', got 'video_a 1.0'"),
        ("video_a 1.0 x\n", "video 'video_a': end is not a number: 'x'"),
        ("video_a nan 2\n", "video 'video_a': start is not a finite number: 'nan'"),
        ("video_a 3.0 2.0\n", "video 'video_a': segment end 2 is not after its start 3"),
        ("video_a 3.0 3.0\n", "video 'video_a': segment end 3 is not after its start 3"),
    ],
)
def test_cli_bad_line(tmp_path, capsys, content, problem):
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "Diving_test.txt").write_text("video_ok 0 1\n\n" + content)
    line = run_bad(tmp_path, capsys, annot)
    assert line == f"talnet: error: {annot / 'Diving_test.txt'}:3: {problem}"


def test_cli_missing_folder_and_empty_folder(tmp_path, capsys):
    missing = tmp_path / "nope"
    line = run_bad(tmp_path, capsys, missing)
    assert line == f"talnet: error: {missing}: THUMOS annotation folder not found"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    line = run_bad(tmp_path, capsys, empty)
    assert line.startswith(f"talnet: error: {empty}: no THUMOS annotation files")


def test_cli_video_in_two_subsets(tmp_path, capsys):
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "A_test.txt").write_text("v 0 1\n")
    (annot / "A_val.txt").write_text("v 2 3\n")
    line = run_bad(tmp_path, capsys, annot)
    assert line == (
        f"talnet: error: {annot / 'A_val.txt'}:1: video 'v' is in subset 'validation' here "
        f"but 'test' in {annot / 'A_test.txt'}"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("id,length\nv,3\n", "durations CSV needs a header with columns video_id,duration[,fps]"),
        ("video_id,duration\nv,abc\n", ":2: video 'v': duration is not a number: 'abc'"),
        ("video_id,duration\nv,-3\n", ":2: video 'v': duration and fps must be positive"),
        ("video_id,duration,fps\nv,3\n", ":2: expected 3 columns, got 2"),
    ],
)
def test_cli_bad_durations_csv(tmp_path, capsys, content, problem):
    annot = make_thumos(tmp_path / "annot")
    csv_path = tmp_path / "d.csv"
    csv_path.write_text(content)
    line = run_bad(tmp_path, capsys, annot, "--durations", str(csv_path))
    assert line.startswith(f"talnet: error: {csv_path}")
    assert problem in line


def test_cli_missing_durations_csv(tmp_path, capsys):
    annot = make_thumos(tmp_path / "annot")
    line = run_bad(tmp_path, capsys, annot, "--durations", str(tmp_path / "none.csv"))
    assert line == f"talnet: error: {tmp_path / 'none.csv'}: durations file not found"


def test_cli_bad_feature_folder(tmp_path, capsys):
    annot = make_thumos(tmp_path / "annot")
    line = run_bad(tmp_path, capsys, annot, "--features", str(tmp_path / "nofeats"))
    assert line == f"talnet: error: {tmp_path / 'nofeats'}: feature folder not found"


def test_unsafe_video_id_never_becomes_a_path(tmp_path):
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "A_test.txt").write_text("../evil 0 1\n")
    feats = tmp_path / "feats"
    save_array(feats, "ok", np.zeros((3, 2)))
    gt = quiet(convert_thumos, annot, features_dir=feats)
    assert gt["../evil"].duration is None
    assert not (tmp_path / "evil.npy").exists()
