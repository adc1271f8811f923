"""Inception-v1 I3D (Carreira & Zisserman, CVPR 2017), laid out like the public PyTorch weights.

Module and parameter names match the widely used `rgb_imagenet.pt` / `flow_imagenet.pt` state
dicts (`Conv3d_1a_7x7.conv3d.weight`, `Mixed_4f.b2b.bn.running_var`, `logits.conv3d.bias`, ...)
so they load with `strict=True`. Padding is TensorFlow's "SAME", computed from each input's size,
because the weights were converted from the TensorFlow original and depend on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talnet.video.state_dict import fill_num_batches_tracked

Triple = tuple[int, int, int]

# (name, kind, arguments) in forward order. "unit": output channels, kernel, stride.
# "pool": kernel, stride. "mixed": input channels and the six branch widths
# (b0 1x1, b1 1x1 -> 3x3, b2 1x1 -> 3x3, b3 pool -> 1x1).
_LAYOUT: tuple[tuple[str, str, tuple], ...] = (
    ("Conv3d_1a_7x7", "unit", (64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "unit", (64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", "unit", (192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "mixed", (192, (64, 96, 128, 16, 32, 32))),
    ("Mixed_3c", "mixed", (256, (128, 128, 192, 32, 96, 64))),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "mixed", (480, (192, 96, 208, 16, 48, 64))),
    ("Mixed_4c", "mixed", (512, (160, 112, 224, 24, 64, 64))),
    ("Mixed_4d", "mixed", (512, (128, 128, 256, 24, 64, 64))),
    ("Mixed_4e", "mixed", (512, (112, 144, 288, 32, 64, 64))),
    ("Mixed_4f", "mixed", (528, (256, 160, 320, 32, 128, 128))),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "mixed", (832, (256, 160, 320, 32, 128, 128))),
    ("Mixed_5c", "mixed", (832, (384, 192, 384, 48, 128, 128))),
)

FEATURE_DIM = 1024  # channels of Mixed_5c


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one axis; the odd extra pixel goes after."""
    total = max(kernel - (stride if size % stride == 0 else size % stride), 0)
    return total // 2, total - total // 2


def same_pads(x: torch.Tensor, kernel: Triple, stride: Triple) -> list[tuple[int, int]]:
    """Per-axis (before, after) "SAME" padding of the (T, H, W) axes of x (N, C, T, H, W)."""
    return [same_padding(x.shape[2 + i], kernel[i], stride[i]) for i in range(3)]


def pad_arg(pads: list[tuple[int, int]]) -> tuple[int, ...]:
    """F.pad's order: last axis first."""
    return tuple(p for pair in reversed(pads) for p in pair)


class Unit3D(nn.Module):
    """Conv3d ("SAME" padding, no bias) -> BatchNorm -> ReLU; the logits variant has bias only."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        batch_norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.relu = relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=bias)
        # eps/momentum as in the TensorFlow original the public weights come from.
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_pads(x, self.kernel, self.stride)
        if all(a == b for a, b in pads):
            # Symmetric: let the convolution pad, which saves a copy of the input.
            padding = tuple(a for a, _ in pads)
        else:
            x = F.pad(x, pad_arg(pads))
            padding = (0, 0, 0)
        conv = self.conv3d
        x = F.conv3d(x, conv.weight, conv.bias, conv.stride, padding)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class SamePool3d(nn.Module):
    """Max pooling with "SAME" padding. Its inputs are ReLU outputs (>= 0), so zero padding and
    max-pool's own -inf padding give the same result; the cheaper one is used."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_pads(x, self.kernel, self.stride)
        if all(a == b for a, b in pads):
            return F.max_pool3d(x, self.kernel, self.stride, tuple(a for a, _ in pads))
        return F.max_pool3d(F.pad(x, pad_arg(pads)), self.kernel, self.stride)


class Mixed(nn.Module):
    """Inception block: four parallel branches concatenated along channels."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(in_channels, w0)
        self.b1a = Unit3D(in_channels, w1a)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, w2a)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a = SamePool3d((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1
        )
        if x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous():
            # torch.cat answers channels-first; without this every later block (and its max
            # pools, 10x slower channels-first) would leave the channels-last fast path
            out = out.contiguous(memory_format=torch.channels_last_3d)
        return out


class InceptionI3d(nn.Module):
    """Inception-v1 I3D for RGB (`in_channels=3`) or optical flow (`in_channels=2`) clips.

    Inputs are (N, C, T, H, W) with values in [-1, 1] (RGB scaled from [0, 255]; flow clipped to
    [-20, 20] pixels and divided by 20). `extract_features` gives the (N, 1024) clip descriptor
    used by TAL-Net; `forward` gives Kinetics logits per time step as the public model does.
    """

    ENDPOINTS: tuple[str, ...] = tuple(name for name, _, _ in _LAYOUT)

    def __init__(self, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        if in_channels not in (2, 3):
            raise ValueError(f"in_channels must be 3 (RGB) or 2 (flow), got {in_channels}")
        channels = in_channels
        for name, kind, args in _LAYOUT:
            if kind == "unit":
                out, kernel, stride = args
                setattr(self, name, Unit3D(channels, out, kernel, stride))
                channels = out
            elif kind == "pool":
                setattr(self, name, SamePool3d(*args))
            else:
                block = Mixed(*args)
                assert args[0] == channels, name  # the layout table is self-consistent
                setattr(self, name, block)
                channels = block.out_channels
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(FEATURE_DIM, num_classes, batch_norm=False, relu=False, bias=True)
        self._register_load_state_dict_pre_hook(fill_num_batches_tracked)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c activations (N, 1024, T/8, H/32, W/32) of clips x (N, C, T, H, W)."""
        for name in self.ENDPOINTS:
            x = getattr(self, name)(x)
        return x

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1024) descriptor: Mixed_5c averaged over time and space."""
        return self.feature_map(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, T/8 - 1): 2x7x7 average pool (stride 1) then a 1x1x1 conv,
        as in the public model (224x224 inputs)."""
        x = F.avg_pool3d(self.feature_map(x), (2, 7, 7), stride=1)
        return self.logits(self.dropout(x)).squeeze(4).squeeze(3)
