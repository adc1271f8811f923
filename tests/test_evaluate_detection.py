import warnings

import numpy as np
import pytest
from evaluate_reference import detection_ap
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from talnet.errors import TalnetError
from talnet.evaluate.detection import (
    ACTIVITYNET_TIOUS,
    THUMOS_TIOUS,
    evaluate_detection,
    interpolated_ap,
    precision_recall,
    video_ap,
)
from talnet.io.annotations import DataWarning
from talnet.io.types import Annotation, Detection, VideoInfo


def make_gt(videos: dict[str, list[tuple[str, float, float]]], subset: str = "test"):
    return {
        vid: VideoInfo(vid, subset, 100.0, 30.0, [Annotation(*a) for a in anns])
        for vid, anns in videos.items()
    }


def test_protocol_thresholds():
    assert THUMOS_TIOUS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    assert len(ACTIVITYNET_TIOUS) == 10
    assert ACTIVITYNET_TIOUS[0] == 0.5 and ACTIVITYNET_TIOUS[-1] == 0.95
    assert ACTIVITYNET_TIOUS == tuple(np.linspace(0.5, 0.95, 10))


def test_hand_computed_ap_with_a_duplicate():
    gt = make_gt({"v": [("A", 0, 10), ("A", 20, 30)]})
    dets = {
        "v": [
            Detection("A", 0, 10, 0.9),  # TP (tIoU 1)
            Detection("A", 1, 9, 0.8),  # duplicate of the first: FP
            Detection("A", 20, 29, 0.7),  # TP at 0.5 (tIoU 0.9), FP at 0.95
        ]
    }
    report = evaluate_detection(gt, dets, tious=[0.5, 0.95])
    # 0.5: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 1/2 * 1 + 1/2 * 2/3
    np.testing.assert_allclose(report.mAP, [5 / 6, 1 / 2], atol=1e-12)
    assert report.average == pytest.approx((5 / 6 + 1 / 2) / 2)
    precision, recall = precision_recall(gt, dets, "A", 0.5)
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(recall, [1 / 2, 1 / 2, 1])


def test_match_goes_to_the_highest_tiou_ground_truth():
    # The first prediction overlaps both instances; it must take B (tIoU 9/11), not A
    # (6/14), leaving A for the second prediction (tIoU 0.9).
    gt = make_gt({"v": [("A", 0, 10), ("A", 5, 15)]})
    dets = {"v": [Detection("A", 4, 14, 0.9), Detection("A", 0, 9, 0.8)]}
    assert evaluate_detection(gt, dets, tious=[0.4]).mAP[0] == pytest.approx(1.0)


def test_interpolated_ap_hand_case():
    # precision 1, 0.5, 2/3 at recall 0.25, 0.25, 0.5: 0.25 * 1 + 0.25 * 2/3
    ap = interpolated_ap(np.array([[1, 0.5, 2 / 3]]), np.array([[0.25, 0.25, 0.5]]))
    assert ap[0] == pytest.approx(0.25 + 0.25 * 2 / 3)


def test_ground_truth_as_predictions_scores_one():
    gt = make_gt(
        {
            "a": [("A", 0, 5), ("B", 3, 9), ("A", 20, 21)],
            "b": [("B", 1, 2), ("Ambiguous", 4, 8)],
            "c": [],
        }
    )
    dets = {
        vid: [Detection(a.label, a.start, a.end, 1.0) for a in info.annotations]
        for vid, info in gt.items()
        if vid != "c"
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the Ambiguous prediction
        report = evaluate_detection(gt, dets, tious=ACTIVITYNET_TIOUS)
    np.testing.assert_array_equal(report.mAP, 1.0)
    assert report.average == 1.0
    assert sorted(report.ap_per_class) == ["A", "B"]  # Ambiguous is not a class


def test_empty_predictions_score_zero_and_classes_without_predictions_count():
    gt = make_gt({"a": [("A", 0, 5), ("B", 3, 9)]})
    assert evaluate_detection(gt, {}).average == 0.0
    report = evaluate_detection(gt, {"a": [Detection("A", 0, 5, 0.5)]}, tious=[0.5])
    assert report.ap_per_class["A"][0] == 1.0
    assert report.ap_per_class["B"][0] == 0.0
    assert report.mAP[0] == 0.5


def test_unknown_videos_and_labels_are_ignored_with_one_warning():
    gt = make_gt({"a": [("A", 0, 5)]})
    good = [Detection("A", 0, 5, 0.5), Detection("A", 6, 8, 0.4)]
    dets = {
        "a": good + [Detection("Nope", 0, 5, 0.9), Detection("Ambiguous", 0, 5, 0.9)],
        "zzz": [Detection("A", 0, 5, 0.99)],
    }
    with pytest.warns(DataWarning) as record:
        report = evaluate_detection(gt, dets, tious=[0.5])
    assert len(record) == 1
    message = str(record[0].message)
    assert "1 for 1 video(s)" in message and "'zzz'" in message
    assert "2 with 2 label(s)" in message and "'Nope'" in message
    assert report.mAP[0] == evaluate_detection(gt, {"a": good}, tious=[0.5]).mAP[0]


def test_subset_filter_is_case_insensitive_and_drops_other_videos():
    gt = make_gt({"t1": [("A", 0, 5)]}, subset="Test") | make_gt({"v1": [("A", 0, 5)]}, "val")
    dets = {"t1": [Detection("A", 0, 5, 0.5)], "v1": [Detection("A", 50, 60, 0.9)]}
    with pytest.warns(DataWarning, match="'v1'"):
        report = evaluate_detection(gt, dets, subset="test")
    np.testing.assert_array_equal(report.mAP, 1.0)
    with pytest.raises(TalnetError, match="subset"):
        evaluate_detection(gt, dets, subset="train")


def test_bad_thresholds_and_no_instances_are_errors():
    gt = make_gt({"a": [("A", 0, 5)]})
    with pytest.raises(TalnetError, match=r"\(0, 1\]"):
        evaluate_detection(gt, {}, tious=[0.0])
    with pytest.raises(TalnetError, match="no action instance"):
        evaluate_detection(make_gt({"a": [("Ambiguous", 0, 5)]}), {})


def test_video_ap_per_video():
    gt = make_gt({"a": [("A", 0, 5), ("B", 10, 20)], "b": [("A", 0, 5)], "c": []})
    dets = {
        "a": [Detection("A", 0, 5, 0.9)],  # A perfect, B missed -> (1 + 0) / 2
        "b": [Detection("A", 50, 55, 0.9), Detection("A", 0, 5, 0.5)],  # FP then TP -> 0.5
    }
    assert video_ap(gt, dets) == {"a": 0.5, "b": 0.5}


def test_format_table_and_json():
    gt = make_gt({"a": [("A", 0, 5), ("B", 10, 20)]})
    report = evaluate_detection(gt, {"a": [Detection("A", 0, 5, 0.9)]})
    table = report.format_table()
    assert "mAP (%)" in table and "50.00" in table and "AP@0.5" in table
    js = report.to_json()
    assert js["tious"] == list(THUMOS_TIOUS)
    assert js["mAP"] == [0.5] * 7 and js["average"] == 0.5
    assert js["ap_per_class"] == {"A": [1.0] * 7, "B": [0.0] * 7}


# Property: agreement with the brute-force reference on random inputs with ties (scores and
# tIoU on a half-second grid), duplicates, Ambiguous ground truth, zero-length predictions,
# unknown videos and labels, classes without predictions, reversed segments.
_segment = st.tuples(st.integers(0, 24), st.integers(0, 10))
_gt_video = st.lists(
    st.tuples(st.sampled_from(["A", "B", "C", "Ambiguous"]), _segment.filter(lambda s: s[1] > 0)),
    max_size=6,
)
_det_video = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C", "D", "Ambiguous"]),
        # Lengths from -1: reversed segments only the Python API lets through, with NaN tIoU
        # (0 / 0) against an instance they mirror, which the reference treats as a match.
        st.tuples(st.integers(0, 24), st.integers(-1, 10)),
        st.integers(0, 4),
    ),
    max_size=12,
)


@st.composite
def cases(draw):
    n = draw(st.integers(1, 4))
    gt = make_gt(
        {
            f"v{i}": [(lab, s / 2, (s + ln) / 2) for lab, (s, ln) in draw(_gt_video)]
            for i in range(n)
        }
    )
    dets = {
        vid: [Detection(lab, s / 2, (s + ln) / 2, sc / 4) for lab, (s, ln), sc in draw(_det_video)]
        for vid in [*gt, "unknown"]
        if draw(st.booleans())
    }
    tious = draw(st.sampled_from([THUMOS_TIOUS, ACTIVITYNET_TIOUS, (0.5,), (1.0, 0.25)]))
    return gt, dets, tious


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_agrees_with_brute_force_reference(case):
    gt, dets, tious = case
    assume(any(a.label != "Ambiguous" for info in gt.values() for a in info.annotations))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        report = evaluate_detection(gt, dets, tious=tious)
    expected = detection_ap(gt, dets, tious)
    assert sorted(report.ap_per_class) == sorted(expected)
    for label, ap in expected.items():
        np.testing.assert_allclose(report.ap_per_class[label], ap, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        report.mAP, np.mean(list(expected.values()), axis=0), rtol=0, atol=1e-9
    )


def test_agrees_with_brute_force_on_a_crowded_case():
    # Many overlapping instances and predictions per (class, video): long chains of conflicts
    # for the round-based matching, and many ties in score and tIoU.
    rng = np.random.default_rng(1)
    gt = make_gt(
        {
            f"v{v}": [
                (f"C{rng.integers(2)}", s, s + ln)
                for s, ln in zip(
                    rng.integers(0, 40, 30) / 2, rng.integers(1, 12, 30) / 2, strict=True
                )
            ]
            for v in range(3)
        }
    )
    dets = {
        vid: [
            Detection(f"C{rng.integers(3)}", s, s + ln, sc)
            for s, ln, sc in zip(
                rng.integers(0, 40, 150) / 2,
                rng.integers(0, 12, 150) / 2,
                rng.integers(0, 5, 150),
                strict=True,
            )
        ]
        for vid in gt
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        report = evaluate_detection(gt, dets, tious=ACTIVITYNET_TIOUS + THUMOS_TIOUS)
    expected = detection_ap(gt, dets, ACTIVITYNET_TIOUS + THUMOS_TIOUS)
    for label, ap in expected.items():
        np.testing.assert_allclose(report.ap_per_class[label], ap, rtol=0, atol=1e-9)


def test_reversed_prediction_with_nan_tiou_matches_like_the_reference():
    # [2.5, 2.0] against [2.0, 2.5]: intersection 0, union 0, tIoU NaN; the reference's
    # `tiou < threshold` is false for NaN, so it counts as a match there, and here.
    gt = make_gt({"v": [("A", 2.0, 2.5), ("A", 0.0, 10.0)]})
    dets = {"v": [Detection("A", 2.5, 2.0, 0.9), Detection("A", 0.0, 10.0, 0.5)]}
    report = evaluate_detection(gt, dets, tious=THUMOS_TIOUS)
    expected = detection_ap(gt, dets, THUMOS_TIOUS)["A"]
    np.testing.assert_allclose(report.ap_per_class["A"], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(expected, 1.0)


def test_non_finite_times_are_errors():
    gt = make_gt({"a": [("A", 0, 5)]})
    with pytest.raises(TalnetError, match="finite"):
        evaluate_detection(gt, {"a": [Detection("A", 0, float("nan"), 0.5)]})
    with pytest.raises(TalnetError, match="finite"):
        evaluate_detection(make_gt({"a": [("A", 0, float("inf"))]}), {})
