"""TAL-Net: per-stream proposal network and classifier, fused late by averaging logits."""

from __future__ import annotations

import torch
from torch import nn

from talnet.config import ModelConfig
from talnet.errors import TalnetError
from talnet.model.classifier import ActionClassifier
from talnet.model.towers import ProposalNetwork, propose_jointly


class StreamNetwork(nn.Module):
    """The two-stage network of one stream (or of the concatenated streams, early fusion)."""

    def __init__(self, in_dim: int, num_classes: int, cfg: ModelConfig):
        super().__init__()
        self.spn = ProposalNetwork(
            in_dim,
            cfg.anchors,
            cfg.spn_reduce_dim,
            cfg.tower_dim,
            multi_tower=cfg.multi_tower,
            context=cfg.spn_context,
            shared_rf=cfg.shared_rf,
        )
        self.classifier = ActionClassifier(
            in_dim,
            num_classes,
            cfg.soi_reduce_dim,
            cfg.soi_bins,
            cfg.fc_dim,
            cfg.dropout,
            context=cfg.cls_context,
            mode=cfg.soi_mode,
            samples=cfg.soi_samples,
        )


class TalNet(nn.Module):
    """The whole model. Late fusion: one StreamNetwork per stream, logits averaged; early
    fusion: one StreamNetwork on the streams' concatenated features.

    Inputs are {stream: (T, C) or (B, T, C)} tensors; stream dims come from the features.
    """

    def __init__(self, stream_dims: dict[str, int], num_classes: int, cfg: ModelConfig):
        super().__init__()
        streams = list(cfg.streams or stream_dims)
        missing = [s for s in streams if s not in stream_dims]
        if missing:
            raise TalnetError(
                f"config asks for stream(s) {missing} but the features have {list(stream_dims)}"
            )
        self.config = cfg
        self.num_classes = num_classes
        self.stream_dims = {s: int(stream_dims[s]) for s in streams}
        if cfg.fusion == "early":
            self.branch_streams = {"+".join(streams): streams}
        else:
            self.branch_streams = {s: [s] for s in streams}
        self.branches = nn.ModuleDict(
            {
                name: StreamNetwork(sum(self.stream_dims[s] for s in parts), num_classes, cfg)
                for name, parts in self.branch_streams.items()
            }
        )
        self.register_buffer("scales", torch.tensor(cfg.anchors, dtype=torch.float32), False)

    def branch_inputs(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{stream: (T, C) or (B, T, C)} -> {branch: (B, T, C)} (concatenated for early fusion)."""
        out = {}
        for name, parts in self.branch_streams.items():
            xs = [features[s] if features[s].dim() == 3 else features[s][None] for s in parts]
            out[name] = torch.cat(xs, dim=-1) if len(xs) > 1 else xs[0]
        return out

    def propose(self, inputs: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per branch: objectness logits (B, K, T, 2) and offsets (B, K, T, 2)."""
        spns = [self.branches[name].spn for name in inputs]
        return propose_jointly(spns, list(inputs.values()))

    def feature_maps(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Per branch: the classifier's reduced feature map (B, T, D)."""
        return [self.branches[name].classifier.feature_map(x) for name, x in inputs.items()]

    def classify(
        self, fmaps: list[torch.Tensor], proposals: torch.Tensor
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per branch: logits (N, C+1) and offsets (N, C+1, 2) for one video's proposals.

        Pooling is per channel, so branches that pool alike (late fusion's two streams) pool
        their channel-concatenated maps in one pass and split the result.
        """
        classifiers = [branch.classifier for branch in self.branches.values()]
        if len({c.pooling_key() for c in classifiers}) != 1:
            return [c(fmap[0], proposals) for c, fmap in zip(classifiers, fmaps, strict=True)]
        joint = fmaps[0][0] if len(fmaps) == 1 else torch.cat([f[0] for f in fmaps], dim=-1)
        pooled = classifiers[0].pool(joint, proposals).split([f.shape[-1] for f in fmaps], -1)
        return [c.head(p) for c, p in zip(classifiers, pooled, strict=True)]


def fuse(outputs: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """Late fusion: the element-wise mean of each output over branches (logits and offsets)."""
    if len(outputs) == 1:
        return outputs[0]
    return tuple(torch.stack(parts).mean(dim=0) for parts in zip(*outputs, strict=True))
