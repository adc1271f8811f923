import warnings

import numpy as np
import pytest
from evaluate_reference import proposal_recall
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from talnet.evaluate.proposals import AN_VALUES, PROPOSAL_TIOUS, evaluate_proposals
from talnet.io.annotations import DataWarning
from talnet.io.types import Annotation, Detection, VideoInfo


def make_gt(videos):
    return {
        vid: VideoInfo(vid, "test", 100.0, 30.0, [Annotation(*a) for a in anns])
        for vid, anns in videos.items()
    }


def test_thresholds_are_half_to_one_in_steps_of_005():
    assert len(PROPOSAL_TIOUS) == 11
    np.testing.assert_allclose(PROPOSAL_TIOUS, np.arange(0.5, 1.0001, 0.05))


def test_hand_computed_average_recall():
    gt = make_gt({"v": [("A", 0, 10), ("B", 20, 30)]})
    dets = {
        "v": [
            Detection("A", 0, 10, 0.9),  # recalls the first instance at every threshold
            Detection("X", 20, 25, 0.8),  # tIoU 0.5 with the second (label ignored)
            Detection("A", 40, 50, 0.1),  # nothing
        ]
    }
    report = evaluate_proposals(gt, dets, an_values=(1, 2, 5))
    # AN=1: one proposal per video -> half the instances at all 11 thresholds.
    # AN>=2: the second instance joins at tIoU 0.5 only: (1 + 10 * 0.5) / 11.
    np.testing.assert_allclose(report.average_recall, [0.5, 6 / 11, 6 / 11], atol=1e-12)
    np.testing.assert_allclose(report.recall[:, 1], [1.0] + [0.5] * 10, atol=1e-12)
    assert report.ar100 == pytest.approx(6 / 11)


def test_perfect_and_empty_proposals():
    gt = make_gt({"a": [("A", 0, 5), ("B", 7, 9)], "b": [("A", 1, 2)]})
    perfect = {
        vid: [Detection(a.label, a.start, a.end, 1.0) for a in info.annotations]
        for vid, info in gt.items()
    }
    report = evaluate_proposals(gt, perfect)
    np.testing.assert_allclose(report.average_recall[report.an >= 2], 1.0)
    assert report.ar100 == 1.0
    empty = evaluate_proposals(gt, {})
    assert empty.ar100 == 0.0 and empty.auc == 0.0 and not empty.average_recall.any()


def test_json_and_table():
    gt = make_gt({"a": [("A", 0, 5)]})
    report = evaluate_proposals(gt, {"a": [Detection("A", 0, 5, 1.0)]})
    js = report.to_json()
    assert js["an"] == list(AN_VALUES)
    assert len(js["recall"]) == 11 and len(js["curve"]["an"]) == 100
    assert js["ar100"] == 1.0
    table = report.format_table()
    assert "AR@100 (%): 100.00" in table and "1000" in table


_segment = st.tuples(st.integers(0, 30), st.integers(1, 10))


@st.composite
def cases(draw):
    n = draw(st.integers(1, 4))
    gt = make_gt(
        {
            f"v{i}": [
                (lab, s / 2, (s + ln) / 2)
                for lab, (s, ln) in draw(
                    st.lists(st.tuples(st.sampled_from(["A", "Ambiguous"]), _segment), max_size=5)
                )
            ]
            for i in range(n)
        }
    )
    dets = {
        vid: [
            Detection("A", s / 2, (s + ln) / 2, sc / 4)
            for (s, ln), sc in draw(st.lists(st.tuples(_segment, st.integers(0, 4)), max_size=15))
        ]
        for vid in [*gt, "unknown"]
        if draw(st.booleans())
    }
    return gt, dets


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.lists(st.integers(1, 20), min_size=1, max_size=3))
def test_agrees_with_brute_force_reference(case, an_values):
    gt, dets = case
    assume(any(a.label != "Ambiguous" for info in gt.values() for a in info.annotations))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        report = evaluate_proposals(gt, dets, an_values=an_values)
    tious = np.array(PROPOSAL_TIOUS)

    def reference(max_avg):
        try:
            return proposal_recall(gt, dets, max_avg, tious)
        except ZeroDivisionError:  # no proposal kept: the reference fails, talnet says 0
            return np.zeros((len(tious), 100)), np.zeros(100)

    for j, an in enumerate(report.an):
        recall, _ = reference(int(an))
        np.testing.assert_allclose(report.recall[:, j], recall[:, -1], rtol=0, atol=1e-9)
    recall, per_video = reference(100)
    average = recall.mean(axis=0)
    assert report.ar100 == pytest.approx(average[-1], abs=1e-9)
    auc = np.trapezoid(average, per_video) / per_video[-1] if per_video[-1] else 0.0
    assert report.auc == pytest.approx(auc, abs=1e-9)
    recall, _ = reference(int(report.an[-1]))
    np.testing.assert_allclose(report.curve_ar, recall.mean(axis=0), rtol=0, atol=1e-9)
