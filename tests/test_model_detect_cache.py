"""Detection does not depend on what the model saw before: nothing cached per length leaks."""

import pytest
import torch
from model_factory import tiny_config

from talnet.model.talnet import TalNet, fuse

LENGTHS = [700, 37, 256, 1001, 5, 300]  # around and beyond the windows of tiny_config (256)


def _model(window: int = 256) -> TalNet:
    torch.manual_seed(0)
    config = tiny_config()
    config.detect.window_steps = window
    return TalNet({"rgb": 8, "flow": 8}, 3, config).eval()


def _features(length: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(length)
    return {s: torch.randn(length, 8, generator=gen) for s in ("rgb", "flow")}


def test_detections_after_other_lengths_equal_a_fresh_models():
    seasoned = _model()
    with torch.inference_mode():
        for length in LENGTHS:  # every length once, so the last ones meet a model with history
            seasoned(_features(length))
        for length in LENGTHS:
            alone = _model()(_features(length))
            again = seasoned(_features(length))
            assert len(alone.scores) > 0
            assert torch.equal(again.segments, alone.segments), length
            assert torch.equal(again.classes, alone.classes), length
            assert torch.equal(again.scores, alone.scores), length


@pytest.mark.parametrize("length", [257, 300, 511, 700, 1001])
def test_windowed_proposals_equal_a_whole_video_pass_at_any_length(length):
    windowed, whole = _model(window=256), _model(window=10_000)
    inputs = windowed.branch_inputs(_features(length))
    with torch.inference_mode():
        win_obj, win_off = windowed.propose_windowed(inputs)
        whole_obj, whole_off = fuse(whole.propose(inputs))
    assert torch.allclose(win_obj, whole_obj[0], atol=1e-5)
    assert torch.allclose(win_off, whole_off[0], atol=1e-5)
