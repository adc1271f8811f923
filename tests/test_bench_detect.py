import numpy as np
import pytest

from talnet.bench.detect import VideoSet, quantile_draw, video_frames
from talnet.data.profiles import THUMOS14_VIDEO_SECONDS


def test_quantile_draw_hand_case():
    # a uniform distribution on [10, 20] with its median moved to 12: half the draws below 12
    draws = quantile_draw({0.0: 10.0, 0.5: 12.0, 1.0: 20.0}, 2000, seed=3)
    assert draws.min() >= 10 and draws.max() <= 20
    assert abs(float(np.mean(draws < 12.0)) - 0.5) < 0.05


def test_quantile_draw_follows_the_profile_and_is_seeded():
    draws = quantile_draw(THUMOS14_VIDEO_SECONDS, 4000, seed=0)
    for q, value in THUMOS14_VIDEO_SECONDS.items():
        if 0 < q < 1:  # the empirical quantiles land near the published ones
            assert abs(float(np.mean(draws <= value)) - q) < 0.03, q
    assert np.array_equal(draws, quantile_draw(THUMOS14_VIDEO_SECONDS, 4000, seed=0))
    with pytest.raises(ValueError, match="0 and 1"):
        quantile_draw({0.5: 1.0, 1.0: 2.0}, 3)


def test_video_set_is_thumos_shaped_and_per_3000_frames():
    frames = video_frames(20)
    assert all(9 * 30 <= f <= 1673 * 30 for f in frames)
    videos = VideoSet.make(frames, stride=16)
    steps = [len(v["rgb"]) for v in videos.features]
    assert steps == [videos.meta.num_steps(f) for f in frames]
    assert videos.per_3000(sum(frames) / 3000 / 1000) == pytest.approx(1.0)
