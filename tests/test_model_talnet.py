import pytest
import torch

from talnet.config import ModelConfig
from talnet.errors import TalnetError
from talnet.model.talnet import TalNet, fuse

TINY = dict(
    anchors=[2, 4, 8],
    spn_reduce_dim=8,
    tower_dim=4,
    soi_reduce_dim=4,
    soi_bins=4,
    fc_dim=16,
    dropout=0.0,
)


def _features(t: int = 40) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {"rgb": torch.randn(t, 6), "flow": torch.randn(t, 5)}


def test_late_fusion_is_the_mean_of_the_two_streams_logits():
    torch.manual_seed(0)
    net = TalNet({"rgb": 6, "flow": 5}, 3, ModelConfig(**TINY)).eval()
    feats = _features()
    inputs = net.branch_inputs(feats)
    per_stream = net.propose(inputs)
    obj, off = fuse(per_stream)
    alone_rgb = net.branches["rgb"].spn(feats["rgb"][None])
    alone_flow = net.branches["flow"].spn(feats["flow"][None])
    assert torch.allclose(obj, (alone_rgb[0] + alone_flow[0]) / 2)
    assert torch.allclose(off, (alone_rgb[1] + alone_flow[1]) / 2)
    proposals = torch.tensor([[3.0, 9.0], [10.0, 30.0]])
    logits, offsets = fuse(net.classify(net.feature_maps(inputs), proposals))
    rgb = net.branches["rgb"].classifier
    flow = net.branches["flow"].classifier
    rgb_logits = rgb(rgb.feature_map(feats["rgb"][None])[0], proposals)[0]
    flow_logits = flow(flow.feature_map(feats["flow"][None])[0], proposals)[0]
    assert logits.shape == (2, 4) and offsets.shape == (2, 4, 2)
    assert torch.allclose(logits, (rgb_logits + flow_logits) / 2)


def test_early_fusion_is_one_network_on_concatenated_features():
    net = TalNet({"rgb": 6, "flow": 5}, 3, ModelConfig(**TINY, fusion="early"))
    assert list(net.branches) == ["rgb+flow"]
    assert net.branches["rgb+flow"].spn.reduce.in_features == 11
    inputs = net.branch_inputs(_features())
    assert inputs["rgb+flow"].shape == (1, 40, 11)


def test_single_stream_and_missing_stream():
    net = TalNet({"rgb": 6, "flow": 5}, 3, ModelConfig(**TINY, streams=["flow"]))
    assert list(net.branches) == ["flow"]
    with pytest.raises(TalnetError, match="stream"):
        TalNet({"rgb": 6}, 3, ModelConfig(**TINY, streams=["flow"]))


def test_half_precision_training_step_and_detection_stay_finite():
    # `--amp` runs the model under float16 autocast; a padding constant of -1e30 once overflowed
    # half precision there. CPU autocast applies the same float16 casts, so this runs anywhere.
    from talnet.config import load_config
    from talnet.detect.inference import detect_steps
    from talnet.train.objective import TrainingObjective

    cfg = load_config("cpu_fast")  # the paper widths share every module; fp16 on CPU is slow
    torch.manual_seed(0)
    model = TalNet({"rgb": 16, "flow": 8}, 3, cfg.model)
    feats = {"rgb": torch.randn(300, 16), "flow": torch.randn(300, 8)}
    gt, labels = torch.tensor([[10.0, 40.0], [100.0, 230.0]]), torch.tensor([1, 3])
    with torch.autocast("cpu", dtype=torch.float16):
        losses = TrainingObjective(model, cfg.train)(feats, gt, labels, torch.Generator())
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"]) and losses["loss"] > 0
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.float16):
        segments, _, scores = detect_steps(model, feats, cfg.detect)
    assert len(scores) > 0
    assert torch.isfinite(segments).all() and torch.isfinite(scores).all()
