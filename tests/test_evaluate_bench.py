import numpy as np
import pytest

from talnet.bench.evaluate import straightforward_map, thumos_sized_case
from talnet.evaluate.detection import evaluate_detection


def test_benchmark_case_is_thumos_sized():
    gt, dets = thumos_sized_case()
    n_gt = sum(len(info.annotations) for info in gt.values())
    assert len(gt) == 213 and 3000 <= n_gt <= 3800
    assert {len(items) for items in dets.values()} == {200}
    assert len({a.label for info in gt.values() for a in info.annotations}) == 20


# Six videos show only a few classes: detections of the others are ignored, with a warning.
@pytest.mark.filterwarnings("ignore::talnet.io.annotations.DataWarning")
def test_baseline_agrees_with_the_vectorized_evaluator():
    gt, dets = thumos_sized_case(seed=3, videos=6, detections_per_video=60)
    np.testing.assert_allclose(
        straightforward_map(gt, dets), evaluate_detection(gt, dets).mAP, rtol=0, atol=1e-12
    )
