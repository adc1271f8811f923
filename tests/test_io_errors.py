"""Every bad-input case of the formats: one error line naming file, video and problem; exit 2."""

import json
import warnings

import numpy as np
import pytest

from talnet.cli.main import main
from talnet.errors import TalnetError
from talnet.io.annotations import DataWarning, load_ground_truth
from talnet.io.features import FeatureMeta, load_features, read_meta, save_array, write_meta
from talnet.io.results import load_detections

GOOD_VIDEO = {"subset": "test", "duration": 30.0, "fps": 30.0, "annotations": []}


def check_cli(capsys, args, message):
    """`talnet check ARGS` exits 2 and its only non-warning stderr line is the error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        code = main(["check", *args])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if not line.startswith("talnet: warn")]
    assert code == 2
    assert errors == [f"talnet: error: {message}"]
    assert captured.out == ""


def ann(segment, label="Diving"):
    return {"label": label, "segment": segment}


def video(**changes):
    return {**GOOD_VIDEO, **changes}


# (file text, message after "PATH: ")
GT_CASES = {
    "malformed_json": (
        '{"database": {"v": ',
        "malformed JSON at line 1 column 20: Expecting value",
    ),
    "top_level_list": ("[]", "top level: expected a JSON object, got a list"),
    "missing_database": ('{"results": {}}', "top level: missing key 'database'"),
    "duplicate_video": (
        '{"database": {"v": {"subset": "test"}, "v": {"subset": "test"}}}',
        "malformed JSON: key 'v' appears twice",
    ),
    "video_not_object": (
        {"database": {"v": [1, 2]}},
        "video 'v': expected a JSON object, got a list",
    ),
    "missing_subset": (
        {"database": {"v": {"duration": 3.0, "annotations": []}}},
        "video 'v': missing key 'subset'",
    ),
    "subset_not_string": (
        {"database": {"v": video(subset=3)}},
        "video 'v': 'subset' must be a non-empty string, got 3",
    ),
    "duration_string": (
        {"database": {"v": video(duration="30")}},
        "video 'v' duration: expected a number, got '30'",
    ),
    "duration_negative": (
        {"database": {"v": video(duration=-1)}},
        "video 'v' duration: must be positive, got -1",
    ),
    "fps_nan": (
        '{"database": {"v": {"subset": "test", "fps": NaN}}}',
        "video 'v' fps: expected a finite number, got nan",
    ),
    "annotations_not_list": (
        {"database": {"v": video(annotations={"label": "A"})}},
        "video 'v': 'annotations' must be a list, got an object",
    ),
    "missing_label": (
        {"database": {"v": video(annotations=[{"segment": [1, 2]}])}},
        "video 'v' annotation 0: missing key 'label'",
    ),
    "label_not_string": (
        {"database": {"v": video(annotations=[ann([1, 2], label=7)])}},
        "video 'v' annotation 0: 'label' must be a non-empty string, got 7",
    ),
    "missing_segment": (
        {"database": {"v": video(annotations=[{"label": "A"}])}},
        "video 'v' annotation 0: missing key 'segment'",
    ),
    "segment_three_numbers": (
        {"database": {"v": video(annotations=[ann([1, 2, 3])])}},
        "video 'v' annotation 0: segment must be [start, end], got [1, 2, 3]",
    ),
    "segment_not_numeric": (
        {"database": {"v": video(annotations=[ann([1, 2]), ann(["1.0", 2])])}},
        "video 'v' annotation 1 segment start: expected a number, got '1.0'",
    ),
    "segment_infinite": (
        '{"database": {"v": {"subset": "test", "annotations": '
        '[{"label": "A", "segment": [1, Infinity]}]}}}',
        "video 'v' annotation 0 segment end: expected a finite number, got inf",
    ),
    "end_before_start": (
        {"database": {"video_test_1": video(annotations=[ann([5.0, 4.5])])}},
        "video 'video_test_1' annotation 0 (Diving): segment end 4.5 is not after its start 5",
    ),
}


@pytest.mark.parametrize("case", sorted(GT_CASES))
def test_bad_ground_truth(tmp_path, capsys, case):
    content, problem = GT_CASES[case]
    path = tmp_path / "gt.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(TalnetError) as err:
        load_ground_truth(path)
    assert str(err.value) == f"{path}: {problem}"
    check_cli(capsys, ["--ground-truth", str(path)], f"{path}: {problem}")


def test_missing_ground_truth_file(tmp_path, capsys):
    path = tmp_path / "none.json"
    with pytest.raises(TalnetError, match="none.json: ground-truth file not found$"):
        load_ground_truth(path)
    check_cli(capsys, ["--ground-truth", str(path)], f"{path}: ground-truth file not found")


def test_unknown_subset_cli(tmp_path, capsys):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"database": {"a": video(subset="Validation"), "b": video()}}))
    message = f"{path}: no video in subset 'train'; subsets present: test, validation"
    check_cli(capsys, ["--ground-truth", str(path), "--subset", "train"], message)


DET_CASES = {
    "malformed_json": ("{'results': {}}", "malformed JSON at line 1 column 2:"),
    "missing_results": ('{"database": {}}', "top level: missing key 'results'"),
    "results_list": ('{"results": []}', "'results': expected a JSON object, got a list"),
    "video_not_list": (
        '{"results": {"v": {"label": "A"}}}',
        "video 'v': expected a list of detections, got an object",
    ),
    "detection_not_object": ('{"results": {"v": [3]}}', "video 'v' detection 0: expected a JSON"),
    "missing_score": (
        '{"results": {"v": [{"label": "A", "segment": [0, 1]}]}}',
        "video 'v' detection 0: missing key 'score'",
    ),
    "score_string": (
        '{"results": {"v": [{"label": "A", "score": "0.5", "segment": [0, 1]}]}}',
        "video 'v' detection 0 score: expected a number, got '0.5'",
    ),
    "score_nan": (
        '{"results": {"v": [{"label": "A", "score": NaN, "segment": [0, 1]}]}}',
        "video 'v' detection 0 score: expected a finite number, got nan",
    ),
    "score_bool": (
        '{"results": {"v": [{"label": "A", "score": true, "segment": [0, 1]}]}}',
        "video 'v' detection 0 score: expected a number, got True",
    ),
    "label_number": (
        '{"results": {"v": [{"label": 4, "score": 0.5, "segment": [0, 1]}]}}',
        "video 'v' detection 0: 'label' must be a non-empty string, got 4",
    ),
    "segment_one_number": (
        '{"results": {"v": [{"label": "A", "score": 0.5, "segment": [1]}]}}',
        "video 'v' detection 0: segment must be [start, end], got [1]",
    ),
    "segment_null": (
        '{"results": {"v": [{"label": "A", "score": 0.5, "segment": [0, null]}]}}',
        "video 'v' detection 0 segment end: expected a number, got None",
    ),
    "end_before_start": (
        '{"results": {"v": [{"label": "A", "score": 0.5, "segment": [2, 1]}]}}',
        "video 'v' detection 0 (A): segment end 1 is before its start 2",
    ),
}


@pytest.mark.parametrize("case", sorted(DET_CASES))
def test_bad_detections(tmp_path, capsys, case):
    content, problem = DET_CASES[case]
    path = tmp_path / "det.json"
    path.write_text(content)
    with pytest.raises(TalnetError) as err:
        load_detections(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {problem}")
    assert "\n" not in message
    check_cli(capsys, ["--predictions", str(path)], message)


def feats_concat(root, arrays, meta=None):
    for vid, arr in arrays.items():
        save_array(root, vid, arr)
    if meta is not None:
        write_meta(root, meta)
    return root


def feats_folders(root, rgb, flow):
    write_meta(root, FeatureMeta(layout="folders"))
    for vid, arr in rgb.items():
        save_array(root, vid, arr, stream="rgb")
    for vid, arr in flow.items():
        save_array(root, vid, arr, stream="flow")
    return root


def save_float64(root, video_id, arr):
    root.mkdir(parents=True)
    np.save(root / f"{video_id}.npy", arr.astype(np.float64))
    return root


def nan_at(step):
    arr = np.zeros((10, 4), dtype=np.float32)
    arr[step, 1] = np.nan
    arr[step + 1, 2] = np.inf
    return arr


ONES = np.ones((10, 4), dtype=np.float32)

# builder(root) -> (video id to load, path named in the error, problem)
FEATURE_CASES = {
    "missing_stream_file": lambda r: (
        feats_folders(r, {"v": ONES, "w": ONES}, {"v": ONES}),
        "w",
        r / "flow" / "w.npy",
        "video 'w': feature file missing",
    ),
    "streams_differ_in_length": lambda r: (
        feats_folders(r, {"v": ONES}, {"v": ONES[:9]}),
        "v",
        r,
        "video 'v': feature streams have different lengths (rgb 10, flow 9 steps)",
    ),
    "nan_and_inf": lambda r: (
        feats_concat(r, {"v": nan_at(3)}),
        "v",
        r / "v.npy",
        "video 'v': 2 NaN/inf value(s) in 2 step(s), first at step 3",
    ),
    "one_dimensional": lambda r: (
        feats_concat(r, {"v": np.ones(8)}),
        "v",
        r / "v.npy",
        "video 'v': wrong dimensionality: array of shape (8,), expected (T, C)",
    ),
    "three_dimensional": lambda r: (
        feats_concat(r, {"v": np.ones((4, 2, 2))}),
        "v",
        r / "v.npy",
        "video 'v': wrong dimensionality: array of shape (4, 2, 2), expected (T, C)",
    ),
    "channels_differ_from_meta": lambda r: (
        feats_concat(r, {"v": ONES}, FeatureMeta(dims=[3, 3])),
        "v",
        r / "v.npy",
        "video 'v': wrong dimensionality: 4 channels, expected 6 (rgb 3 + flow 3)",
    ),
    "channels_differ_between_videos": lambda r: (
        feats_concat(r, {"a": ONES, "b": np.ones((10, 6))}),
        "b",
        r / "b.npy",
        "video 'b': wrong dimensionality: 6 channels, expected 4 (rgb 2 + flow 2)",
    ),
    "stream_channels_differ_from_meta": lambda r: (
        feats_folders(r, {"a": ONES, "b": np.ones((10, 5))}, {"a": ONES, "b": ONES}),
        "b",
        r / "rgb" / "b.npy",
        "video 'b': wrong dimensionality: stream 'rgb' has 5 channels, expected 4",
    ),
    "odd_channels": lambda r: (
        feats_concat(r, {"v": np.ones((10, 5))}),
        "v",
        r / "v.npy",
        "video 'v': wrong dimensionality: 5 channels cannot be split evenly into streams "
        "['rgb', 'flow']; give 'dims' in meta.json",
    ),
    "too_large_for_float32": lambda r: (
        save_float64(r, "v", np.full((10, 4), 1e300)),
        "v",
        r / "v.npy",
        "video 'v': 40 NaN/inf value(s) in 10 step(s), first at step 0",
    ),
    "empty_array": lambda r: (
        feats_concat(r, {"v": np.ones((0, 4))}),
        "v",
        r / "v.npy",
        "video 'v': empty feature array of shape (0, 4)",
    ),
}


@pytest.mark.parametrize("case", sorted(FEATURE_CASES))
def test_bad_features(tmp_path, capsys, case):
    root, video_id, path, problem = FEATURE_CASES[case](tmp_path / "feats")
    with pytest.raises(TalnetError) as err:
        load_features(root, video_id, read_meta(root))
    assert str(err.value) == f"{path}: {problem}"
    check_cli(capsys, ["--features", str(root)], f"{path}: {problem}")


def test_corrupt_npy(tmp_path, capsys):
    root = tmp_path / "feats"
    root.mkdir()
    (root / "v.npy").write_bytes(b"not numpy at all")
    with pytest.raises(TalnetError) as err:
        load_features(root, "v", FeatureMeta(dims=[2, 2]))
    assert str(err.value).startswith(f"{root / 'v.npy'}: video 'v': cannot read feature file: ")
    check_cli(capsys, ["--features", str(root)], str(err.value))


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        ({"fps": -30}, "'fps' must be a positive number, got -30"),
        ({"stride": 2.5}, "'stride' must be a whole number of frames, got 2.5"),
        ({"window": "16"}, "'window' must be a positive number, got '16'"),
        ({"streams": []}, "'streams' must be a list of distinct names, got []"),
        (
            {"layout": "stacked"},
            "'layout' must be one of ('concat', 'folders', 'packed'), got 'stacked'",
        ),
        ({"dims": [4]}, "'dims' must list one positive channel count per stream"),
        ([30, 4, 16], "bad feature meta: expected a JSON object"),
        ({"extra": 3}, "bad feature meta: expected a JSON object (with 'extra' an object)"),
        ({"streams": "rgb"}, "'streams' must be a list of distinct names, got 'rgb'"),
        ({"streams": ["rgb", "rgb"]}, "'streams' must be a list of distinct names"),
    ],
)
def test_bad_meta_json(tmp_path, capsys, meta, problem):
    root = feats_concat(tmp_path / "feats", {"v": ONES})
    (root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TalnetError) as err:
        read_meta(root)
    assert str(err.value).startswith(f"{root / 'meta.json'}: {problem}")
    check_cli(capsys, ["--features", str(root)], str(err.value))


def test_malformed_meta_json(tmp_path, capsys):
    root = feats_concat(tmp_path / "feats", {"v": ONES})
    (root / "meta.json").write_text("{fps: 30}")
    with pytest.raises(TalnetError) as err:
        read_meta(root)
    assert str(err.value).startswith(f"{root / 'meta.json'}: cannot read feature meta: ")
    check_cli(capsys, ["--features", str(root)], str(err.value))


def test_unsafe_stream_name_refused(tmp_path, capsys):
    root = feats_concat(tmp_path / "feats", {"v": ONES})
    (root / "meta.json").write_text(json.dumps({"streams": ["rgb", "../flow"]}))
    message = f"{root}: refusing unsafe file name '../flow' (video id or label)"
    with pytest.raises(TalnetError) as err:
        read_meta(root)
    assert str(err.value) == message
    check_cli(capsys, ["--features", str(root)], message)


def test_missing_feature_folder(tmp_path, capsys):
    root = tmp_path / "nothing"
    check_cli(capsys, ["--features", str(root)], f"{root}: feature folder not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TalnetError, match=r"empty: no \.npy feature files"):
        read_meta(empty)


def test_ground_truth_video_without_features(tmp_path, capsys):
    root = feats_concat(tmp_path / "feats", {"a": ONES})
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"a": video(), "b": video()}}))
    check_cli(
        capsys,
        ["--ground-truth", str(gt), "--features", str(root)],
        f"{root / 'b.npy'}: video 'b': feature file missing",
    )


def test_unsafe_video_id_cannot_reach_outside(tmp_path, capsys):
    root = feats_concat(tmp_path / "feats", {"a": ONES})
    np.save(tmp_path / "evil.npy", ONES)  # what "../evil" would point at
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"../evil": video()}}))
    assert list(load_ground_truth(gt)) == ["../evil"]  # loading the id is fine
    message = f"{root}: refusing unsafe file name '../evil' (video id or label)"
    with pytest.raises(TalnetError) as err:
        load_features(root, "../evil", read_meta(root))
    assert str(err.value) == message
    check_cli(capsys, ["--ground-truth", str(gt), "--features", str(root)], message)
