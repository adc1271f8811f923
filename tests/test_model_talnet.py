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
