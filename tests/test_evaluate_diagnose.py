"""`talnet diagnose` (DETAD, Alwassel et al. ECCV 2018): error types known by construction,
buckets, mAP_N by hand, false negatives, worst cases, and the command line."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from talnet.cli.main import main
from talnet.errors import TalnetError
from talnet.evaluate.detection import evaluate_detection
from talnet.evaluate.diagnose import (
    BUCKETS,
    ERROR_TYPES,
    FALSE_POSITIVE_TYPES,
    Buckets,
    classify_predictions,
    diagnose,
)
from talnet.io.annotations import DataWarning
from talnet.io.types import Annotation, Detection, VideoInfo


def make_gt(videos, duration=100.0, subset="test"):
    return {
        vid: VideoInfo(vid, subset, duration, 30.0, [Annotation(*a) for a in anns])
        for vid, anns in videos.items()
    }


# One prediction of each outcome, by construction (tIoU with the instances in comments).
GT = make_gt(
    {
        "v1": [("A", 10, 20), ("B", 40, 50), ("A", 60, 70)],
        "v2": [("B", 0, 10)],
        "empty": [],
    }
)
DETS = {
    "v1": [
        Detection("A", 10, 20, 0.95),  # A 10-20, tIoU 1: true positive
        Detection("A", 10.5, 20, 0.9),  # the same instance again (0.95): double detection
        Detection("A", 40, 49, 0.85),  # B 40-50 (0.9), another instance's label: wrong label
        Detection("A", 62, 80, 0.8),  # A 60-70 (8/20 = 0.4), shifted off it: localization
        Detection("B", 15, 25, 0.75),  # A 10-20 (1/3), wrong label and poor overlap: confusion
        Detection("A", 85, 95, 0.7),  # nothing there: background
    ],
    "empty": [Detection("B", 1, 2, 0.6)],  # a video without instances: background
}
EXPECTED = {
    (10, 0.95): "true_positive",
    (10.5, 0.9): "double_detection",
    (40, 0.85): "wrong_label",
    (62, 0.8): "localization",
    (15, 0.75): "confusion",
    (85, 0.7): "background",
    (1, 0.6): "background",
}


def test_each_error_type_comes_out_as_constructed():
    got = {(p.detection.start, p.detection.score): p.error for p in classify_predictions(GT, DETS)}
    assert got == EXPECTED
    d = diagnose(GT, DETS)
    # G = 2 for A, 2 for B: A's five predictions fill bands 1G-3G, B's two band 1G.
    counts = dict(zip(ERROR_TYPES, np.sum(d.profile.bands, axis=0).tolist(), strict=True))
    assert counts == {
        "true_positive": 1, "double_detection": 1, "wrong_label": 1, "localization": 1,
        "confusion": 1, "background": 2,
    }  # fmt: skip
    assert d.profile.bands[0] == [1, 1, 0, 0, 1, 1]  # A: TP, double; B: confusion, background
    assert d.profile.bands[1] == [0, 0, 1, 1, 0, 0]  # A ranks 3-4
    assert d.profile.bands[2] == [0, 0, 0, 0, 0, 1]  # A rank 5
    assert d.profile.cumulative[1] == [1, 1, 1, 1, 1, 1]
    assert d.profile.cumulative[-1] == [1, 1, 1, 1, 1, 2]
    assert d.diagnosed == d.predictions == 7


def test_closest_instance_of_any_label_decides_and_thresholds_are_detads():
    gt = make_gt({"v": [("A", 0, 10), ("B", 0, 9.5), ("A", 30, 40)]})
    dets = {
        "v": [
            Detection("A", 0, 10, 0.9),  # takes A 0-10
            # A 0-10 at 0.9 (taken) but B 0-9.5 at 0.95 is closer: wrong label, as DETAD's argmax
            Detection("A", 0, 9, 0.8),
            Detection("A", 30, 35, 0.7),  # A 30-40 at exactly 0.5 = tIoU: a true positive
            Detection("A", 30, 34, 0.6),  # 0.4, taken instance: localization (same label)
            Detection("A", 39, 40, 0.5),  # exactly 0.1: localization
            Detection("A", 20, 21, 0.4),  # no overlap: background
        ]
    }
    got = [p.error for p in classify_predictions(gt, dets)]
    assert got == [
        "true_positive", "wrong_label", "true_positive", "localization", "localization",
        "background",
    ]  # fmt: skip
    # At tIoU 0.6 the prediction at exactly 0.5 is only a localization error.
    assert classify_predictions(gt, dets, tiou=0.6)[2].error == "localization"
    # Just below 0.1 with every instance: background.
    below = {"v": [Detection("A", 39.01, 40, 0.5)]}
    assert classify_predictions(gt, below)[0].error == "background"


def test_removal_gain_is_talnets_map_without_that_type():
    gt = make_gt({"v": [("A", 0, 10), ("A", 20, 30)]})
    dets = {
        "v": [
            Detection("A", 50, 60, 0.9),  # background
            Detection("A", 0, 10, 0.8),  # TP
            Detection("A", 1, 10, 0.7),  # double detection
            Detection("A", 20, 30, 0.6),  # TP
        ]
    }
    d = diagnose(gt, dets)
    # Precision 0, 1/2, 1/3, 1/2 at recall 0, 1/2, 1/2, 1: AP = 1/2 * 1/2 + 1/2 * 1/2 = 1/2.
    assert d.map == pytest.approx(0.5)
    # Without the background error: 1, 1/2, 2/3 -> 1/2 * 1 + 1/2 * 2/3; without the double:
    # 0, 1/2, 2/3, whose interpolated precision is 2/3 at both recalls -> 2/3.
    assert d.gain["background"][0] == pytest.approx(1 / 2 + 1 / 3 - 1 / 2)
    assert d.gain["double_detection"][0] == pytest.approx(2 / 3 - 1 / 2)
    for name in ("wrong_label", "localization", "confusion"):
        assert d.gain[name] == (0.0, 0.0)
    # N = G here, so mAP_N = mAP.
    assert d.map_n == pytest.approx(d.map) and d.gain["background"][1] == pytest.approx(1 / 3)


def test_normalized_map_by_hand():
    # A has 1 instance, B has 3: N = 2 instances per class.
    gt = make_gt({"v": [("A", 0, 10), ("B", 20, 30), ("B", 40, 50), ("B", 60, 70)]})
    dets = {
        "v": [
            Detection("A", 80, 90, 0.9),  # FP
            Detection("A", 0, 10, 0.8),  # TP: recall 1, precision_N = 2 / (2 + 1)
            Detection("B", 20, 30, 0.9),  # TP: recall 1/3, precision_N = (2/3) / (2/3) = 1
            Detection("B", 80, 90, 0.8),  # FP
            Detection("B", 40, 50, 0.7),  # TP: recall 2/3, precision_N = (4/3) / (4/3 + 1)
        ]
    }
    ap_a, ap_b = 2 / 3, 1 / 3 * 1 + 1 / 3 * (4 / 7)
    report = evaluate_detection(gt, dets, tious=[0.5], normalized_positives=2.0)
    assert report.ap_per_class["A"][0] == pytest.approx(ap_a)
    assert report.ap_per_class["B"][0] == pytest.approx(ap_b)
    d = diagnose(gt, dets)
    assert d.normalized_positives == 2.0
    assert d.map_n == pytest.approx((ap_a + ap_b) / 2) == pytest.approx(25 / 42)
    assert d.sensitivity_map_n == pytest.approx(25 / 42)
    # Plain precision: A 1/2; B 1/3 + 1/3 * 2/3.
    assert d.map == pytest.approx((1 / 2 + 1 / 3 + 2 / 9) / 2)


def test_bucket_edges_are_detads_right_closed_intervals():
    length, coverage, instances = BUCKETS["thumos14"]
    np.testing.assert_array_equal(
        length.index(np.array([0, 0.5, 3, 3.001, 6, 12, 18, 18.5, 1e6])),
        [0, 0, 0, 1, 1, 2, 3, 4, 4],
    )
    np.testing.assert_array_equal(
        coverage.index(np.array([0, 0.02, 0.021, 0.08, 0.5, 1.0, 1.2, math.nan])),
        [0, 0, 1, 3, 4, 4, -1, -1],  # beyond the video, or no duration: in no bucket
    )
    np.testing.assert_array_equal(
        instances.index(np.array([1, 2, 40, 41, 80, 81, 500])), [0, 1, 1, 2, 2, 3, 3]
    )
    anet_length, anet_coverage, anet_instances = BUCKETS["activitynet"]
    np.testing.assert_array_equal(anet_length.index(np.array([30, 31, 180, 181])), [0, 1, 3, 4])
    np.testing.assert_array_equal(anet_coverage.index(np.array([0.2, 0.6, 0.61])), [0, 2, 3])
    np.testing.assert_array_equal(anet_instances.index(np.array([1, 4, 5, 9])), [0, 1, 2, 3])
    assert [length.describe(i) for i in range(5)] == ["≤ 3 s", "3–6 s", "6–12 s", "12–18 s",
                                                      "> 18 s"]  # fmt: skip
    assert [instances.describe(i) for i in range(4)] == ["≤ 1", "2–40", "41–80", "≥ 81"]
    assert Buckets("coverage", (0.0, 0.5, 1.0), ("S", "L")).describe(1) == "0.5–1"


def test_instances_fall_in_the_buckets_of_their_length_coverage_and_count():
    # Videos of 100 s: lengths 2, 5, 10, 15, 30 s (coverage 0.02, 0.05, 0.1, 0.15, 0.3).
    many = [("A", 100 + 2 * i, 101 + 2 * i) for i in range(45)]  # 45 more 1 s instances
    gt = make_gt(
        {
            "one": [("A", 0, 2)],
            "three": [("A", 0, 5), ("B", 10, 20), ("B", 30, 45)],
            "crowded": [("B", 0, 30), *many],
        },
        duration=100.0,
    )
    gt["crowded"].duration = 200.0  # 30 s of 200: coverage 0.15; 1 s of 200: 0.005
    d = diagnose(gt, {})
    by = {(b.characteristic, b.bucket): b.instances for b in d.sensitivity}
    assert [by["length", n] for n in ("XS", "S", "M", "L", "XL")] == [1 + 45, 1, 1, 1, 1]
    assert [by["coverage", n] for n in ("XS", "S", "M", "L", "XL")] == [1 + 45, 0, 1, 0, 3]
    assert [by["instances", n] for n in ("XS", "S", "M", "L")] == [1, 3, 46, 0]
    # Nothing predicted: everything missed, mAP_N 0 where there are instances, None elsewhere.
    assert d.missed == d.instances == 50 and d.missed_share == 1.0
    assert all(b.missed == b.instances for b in d.sensitivity)
    assert {b.map_n for b in d.sensitivity if b.instances} == {0.0}
    assert all(b.map_n is None for b in d.sensitivity if not b.instances)


def test_bucket_map_n_counts_only_its_instances_and_the_false_positives():
    gt = make_gt({"v1": [("A", 10, 20), ("B", 40, 50)], "v2": [("A", 10, 20)]})
    dets = {"v1": [Detection("A", 10, 20, 0.9), Detection("A", 70, 80, 0.8)]}
    d = diagnose(gt, dets)  # N = 1.5
    by = {(b.characteristic, b.bucket): b for b in d.sensitivity}
    # Two instances in v1: A found by the first prediction, B by nothing. A: AP_N 1; B: 0.
    assert by["instances", "S"].instances == 2 and by["instances", "S"].map_n == 0.5
    # v2's single A: the true positive found another instance, so it is left out; the false
    # positive stays: A's AP_N 0, the only class in the bucket.
    assert by["instances", "XS"].map_n == 0.0 and by["instances", "XS"].missed == 1


def test_a_match_below_five_percent_normalized_precision_is_a_miss():
    gt = make_gt({"v": [("A", 0, 10)]})  # N = 1

    def found(n_false_positives: int) -> bool:
        dets = {
            "v": [Detection("A", 20 + i, 21 + i, 0.9) for i in range(n_false_positives)]
            + [Detection("A", 0, 10, 0.5)]
        }
        return diagnose(gt, dets).missed == 0

    assert found(18)  # precision_N 1 / 19 > 0.05
    assert not found(19)  # exactly 0.05: DETAD discards it
    d = diagnose(gt, {"v": [Detection("A", 20 + i, 21 + i, 0.9) for i in range(19)]
                            + [Detection("A", 0, 10, 0.5)]})  # fmt: skip
    [missed] = d.longest_missed
    assert missed.matched_score == 0.5 and missed.best_tiou == 1.0


def test_worst_cases_name_videos_and_times():
    d = diagnose(GT, DETS, worst=1)
    assert set(d.worst_false_positives) == set(FALSE_POSITIVE_TYPES)
    [background] = d.worst_false_positives["background"]  # the higher-scoring of the two
    where = (background.video_id, background.detection.start, background.detection.end)
    assert where == ("v1", 85, 95)
    assert background.instance is None
    [wrong] = d.worst_false_positives["wrong_label"]
    assert wrong.instance == Annotation("B", 40, 50) and wrong.tiou == pytest.approx(0.9)
    d = diagnose(GT, DETS)
    # Missed: B 40-50 (v1; the wrong-label prediction does not count), B 0-10 (v2), A 60-70.
    missed = [(m.video_id, m.instance.label, m.instance.start) for m in d.longest_missed]
    assert missed == [("v1", "B", 40), ("v1", "A", 60), ("v2", "B", 0)]  # 10 s each, by video
    assert d.longest_missed[1].best_tiou == pytest.approx(0.4)
    summary = d.to_json()
    json.dumps(summary, allow_nan=False)  # plain JSON
    assert summary["worst_false_positives"]["localization"][0]["start"] == 62
    assert summary["longest_missed"][0] == {
        "video_id": "v1", "label": "B", "start": 40, "end": 50, "length": 10, "best_tiou": 0.0,
        "best_score": None, "matched_score": None,
    }  # fmt: skip


def test_table_names_every_section():
    table = diagnose(GT, DETS).format_table()
    for text in ("False-positive profile", "wrong label", "mAP_N gain", "Sensitivity",
                 "coverage", "Highest-scoring false positives", "Longest missed"):  # fmt: skip
        assert text in table


def test_zero_length_instances_are_dropped_as_detad_does():
    gt = make_gt({"v": [("A", 0, 10), ("A", 20, 20)], "w": [("B", 5, 5)]})
    d = diagnose(gt, {"v": [Detection("A", 0, 10, 0.9)]})
    assert (d.instances, d.classes, d.missed, d.map) == (1, 1, 0, 1.0)


def test_bad_input_is_a_talnet_error():
    with pytest.raises(TalnetError, match="subset"):
        diagnose(GT, DETS, subset="train")
    with pytest.raises(TalnetError, match="tIoU"):
        diagnose(GT, DETS, tiou=1.5)
    with pytest.raises(TalnetError, match="bucket"):
        diagnose(GT, DETS, buckets="coco")


# ---------------------------------------------------------------------------------------------
# Command line


def write_files(tmp_path, results):
    gt = {
        "database": {
            vid: {
                "subset": info.subset,
                "duration": info.duration,
                "annotations": [
                    {"label": a.label, "segment": [a.start, a.end]} for a in info.annotations
                ],
            }
            for vid, info in GT.items()
        }
    }
    dets = {
        vid: [{"label": d.label, "score": d.score, "segment": [d.start, d.end]} for d in items]
        for vid, items in results.items()
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "det.json").write_text(json.dumps({"results": dets}))
    return str(tmp_path / "gt.json"), str(tmp_path / "det.json")


def test_cli_table_json_and_out(tmp_path, capsys):
    gt, det = write_files(tmp_path, {**DETS, "unknown_video": [Detection("A", 1, 2, 0.99)]})
    args = ["diagnose", "--ground-truth", gt, "--predictions", det, "--subset", "test"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "False-positive profile" in captured.out
    # The unknown video is ignored with one warning, as `talnet evaluate` does.
    assert captured.err.count("talnet: warning: ignored predictions") == 1
    assert "unknown_video" in captured.err

    out = tmp_path / "diag"
    assert main([*args, "--json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)  # one JSON object, nothing else
    assert summary["false_positive_profile"]["cumulative_counts"][-1] == [1, 1, 1, 1, 1, 2]
    assert json.loads((out / "diagnosis.json").read_text()) == summary
    for name in ("fp_profile", "removal_gain", "sensitivity"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == [
        "diagnosis.json", "fp_profile.png", "removal_gain.png", "sensitivity.png"
    ]  # fmt: skip


def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    gt, det = write_files(tmp_path, DETS)
    out = tmp_path / "diag"
    missing = str(tmp_path / "missing.json")
    for gt_arg, det_arg, named in ((gt, missing, missing), (missing, det, missing)):
        rc = main(["diagnose", "--ground-truth", gt_arg, "--predictions", det_arg, "--out",
                   str(out)])  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("talnet: error: ") and named in err
        assert err.count("\n") == 1
    (tmp_path / "bad.json").write_text('{"results": {"v1": [{"label": "A", "score": "high"}]}}')
    bad = str(tmp_path / "bad.json")
    assert main(["diagnose", "--ground-truth", gt, "--predictions", bad, "--out", str(out)]) == 2
    assert bad in capsys.readouterr().err
    assert main(["diagnose", "--ground-truth", gt, "--predictions", det, "--subset", "train"]) == 2
    assert "subset" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["diagnose", "--ground-truth", gt, "--predictions", det, "--tiou", "0"])
    assert exit_info.value.code == 2


def test_library_warns_once_about_ignored_predictions():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diagnose(GT, {**DETS, "elsewhere": [Detection("A", 1, 2, 0.5)], "v2": [
            Detection("Ambiguous", 1, 2, 0.5)]})  # fmt: skip
    assert [issubclass(w.category, DataWarning) for w in caught] == [True]
