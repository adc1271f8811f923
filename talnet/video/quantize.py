"""int8 I3D (`talnet extract --precision int8`): post-training static quantization with
PyTorch's own x86 int8 kernels (docs/design.md §2).

Every Unit3D (Conv3d + BatchNorm + ReLU) becomes one fused int8 ConvReLU3d: BatchNorm folded
into the convolution, weights quantized per output channel (symmetric int8), activations per
tensor (unsigned, zero at 0 after ReLU). Activation scales come from calibration: the largest
value each unit gives on a few clips. Activations keep 7 bits (0..127), as PyTorch's x86
default does: without VNNI the int8 dot product sums pairs into 16 bits, which full 8-bit
inputs can overflow. The four branches of an Inception block share one output scale, so their
concatenation needs no requantization; max pooling works on int8 values directly. The network
input is [-1, 1] by construction (RGB scaled, flow clipped and divided by 20), so its scale is
fixed, not calibrated.

Whether this is faster than fp32 depends on the CPU: int8 Conv3d needs VNNI (AVX-512 VNNI,
AVX-VNNI) or AMX to beat oneDNN's fp32 kernels on I3D's large 3x3x3 layers; `talnet bench --only
i3d` prints both on the machine at hand.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from talnet.errors import TalnetError
from talnet.io.atomic import write_json
from talnet.video.i3d import InceptionI3d, Mixed, SamePool3d, Unit3D, pad_arg, same_pads
from talnet.video.weights import user_cache_dir

# PyTorch 2.13 warns that quantized tensors will go in a later release; talnet pins 2.13.
warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")

QMAX = 127  # 7-bit activations (see the module docstring)
INPUT_SCALE, INPUT_ZERO = 2.0 / QMAX, (QMAX + 1) // 2  # [-1, 1] -> 0..127
BRANCH_ENDS = ("b0", "b1b", "b2b", "b3b")  # the units whose outputs a Mixed block concatenates
CALIBRATION_CLIPS = 4
# Flow inputs are pixels / 20 clipped to [-1, 1]; most motion is a few pixels (0.2: 4 px).
_CALIBRATION_AMPLITUDE = {3: 1.0, 2: 0.2}


def int8_engine() -> str:
    """The quantized engine to use: x86 (fbgemm with oneDNN where it is faster) when built."""
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm", "onednn"):
        if engine in engines:
            return engine
    raise TalnetError(f"--precision int8 needs an x86 int8 engine; this PyTorch has {engines}")


@torch.inference_mode()
def calibrate(model: InceptionI3d, clips: Iterable[torch.Tensor]) -> dict[str, float]:
    """{unit or block name: largest output value} of `model` over `clips` (N, C, T, H, W)."""
    maxima: dict[str, float] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, Unit3D | Mixed) and not name.startswith("logits"):

            def hook(_m: nn.Module, _i: object, out: torch.Tensor, name: str = name) -> None:
                maxima[name] = max(maxima.get(name, 0.0), float(out.max()))

            hooks.append(module.register_forward_hook(hook))
    try:
        for clip in clips:
            model.feature_map(clip.contiguous(memory_format=torch.channels_last_3d))
    finally:
        for h in hooks:
            h.remove()
    if not maxima:
        raise ValueError("calibration needs at least one clip")
    return maxima


def calibration_clips(
    in_channels: int, count: int = CALIBRATION_CLIPS, frames: int = 16, size: int = 224
) -> list[torch.Tensor]:
    """Seeded smooth random clips (1, C, frames, size, size) in the network's input range.

    Calibrating on these rather than on the videos being extracted keeps a video's features a
    function of that video and the weights alone (shards and reruns agree). On real footage
    with the Kinetics-400 weights, scales from these clips gave the same feature agreement with
    fp32 as scales from real clips (cosine 0.997-0.998; docs/design.md §2).
    """
    generator = torch.Generator().manual_seed(in_channels)
    amplitude = _CALIBRATION_AMPLITUDE[in_channels]
    coarse = (max(frames // 4, 1), max(size // 8, 1), max(size // 8, 1))
    clips = []
    for _ in range(count):
        noise = torch.rand(1, in_channels, *coarse, generator=generator) * 2 - 1
        clip = F.interpolate(noise, size=(frames, size, size), mode="trilinear")
        clips.append(amplitude * clip)
    return clips


def cached_maxima(model: InceptionI3d, key: str, frames: int, size: int) -> dict[str, float]:
    """`calibrate` on `calibration_clips`, kept in talnet's cache under `key` (the weight file's
    CRC32, or "random"): calibration costs a few clips of fp32 inference (~5 s here)."""
    path = user_cache_dir() / "int8" / f"i3d-{model.in_channels}ch-{key}-{frames}x{size}.json"
    try:
        maxima = json.loads(path.read_text())
        if isinstance(maxima, dict) and all(isinstance(v, float) for v in maxima.values()):
            return maxima
    except (OSError, ValueError):
        pass  # absent or unreadable: calibrate again
    clips = calibration_clips(model.in_channels, frames=frames, size=size)
    maxima = calibrate(model.eval().to(memory_format=torch.channels_last_3d), clips)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, maxima)
    except OSError:
        pass  # a read-only cache only costs the calibration next time
    return maxima


class QuantUnit3D(nn.Module):
    """Unit3D in int8: "SAME" padding, then one fused int8 Conv3d + ReLU."""

    def __init__(self, unit: Unit3D, out_max: float) -> None:
        super().__init__()
        from torch.ao.nn.intrinsic.quantized import ConvReLU3d

        conv, bn = unit.conv3d, unit.bn
        if bn is None or not unit.relu:
            raise ValueError("only Conv3d + BatchNorm + ReLU units are quantized")
        self.kernel, self.stride = unit.kernel, unit.stride
        # Stride 1 with odd kernels pads symmetrically whatever the size: the conv pads itself.
        self.symmetric = unit.stride == (1, 1, 1) and all(k % 2 for k in unit.kernel)
        padding = tuple(k // 2 for k in unit.kernel) if self.symmetric else 0
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = conv.weight * scale.view(-1, 1, 1, 1, 1)
        bias = bn.bias - bn.running_mean * scale
        w_scale = weight.abs().amax(dim=(1, 2, 3, 4)).clamp_min(1e-8) / 127.0
        zeros = torch.zeros(len(w_scale), dtype=torch.long)
        qweight = torch.quantize_per_channel(weight, w_scale, zeros, 0, torch.qint8)
        self.conv = ConvReLU3d(
            conv.in_channels, conv.out_channels, unit.kernel, unit.stride, padding
        )
        self.conv.set_weight_bias(qweight, bias.detach().float())
        self.conv.scale = max(out_max, 1e-6) / QMAX
        self.conv.zero_point = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_quantized:  # the network input, [-1, 1]
            if not self.symmetric:
                x = F.pad(x, pad_arg(same_pads(x, self.kernel, self.stride)))
            x = torch.quantize_per_tensor(x, INPUT_SCALE, INPUT_ZERO, torch.quint8)
        elif not self.symmetric:  # I3D's only strided unit is its first, which gets floats
            raise ValueError("an int8 unit with asymmetric padding must take the float input")
        return self.conv(x)


class QuantPool3d(nn.Module):
    """SamePool3d on int8 values. PyTorch cannot pad channels-last int8 tensors, so an extra
    "SAME" pixel after the input becomes ceil_mode's partial last window, which is the same for
    inputs >= 0 (ReLU outputs, zero at int8 0)."""

    def __init__(self, pool: SamePool3d) -> None:
        super().__init__()
        self.kernel, self.stride = pool.kernel, pool.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_pads(x, self.kernel, self.stride)  # after = before or before + 1
        before = tuple(b for b, _ in pads)
        ceil = any(after > b for b, after in pads)
        return F.max_pool3d(x, self.kernel, self.stride, before, ceil_mode=ceil)


class QuantMixed(nn.Module):
    """An Inception block in int8; its four branch ends share the block's output scale."""

    def __init__(self, block: Mixed, name: str, maxima: dict[str, float]) -> None:
        super().__init__()
        for branch in ("b0", "b1a", "b1b", "b2a", "b2b", "b3b"):
            # Branch ends are scaled to the block's output (the concatenation's) maximum.
            top = maxima[name] if branch in BRANCH_ENDS else maxima[f"{name}.{branch}"]
            setattr(self, branch, QuantUnit3D(getattr(block, branch), top))
        self.b3a = QuantPool3d(block.b3a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1
        )
        return out.contiguous(memory_format=torch.channels_last_3d)


class QuantI3d(nn.Module):
    """I3D's feature path (up to Mixed_5c) in int8; `extract_features` as InceptionI3d's."""

    def __init__(self, model: InceptionI3d, maxima: dict[str, float]) -> None:
        super().__init__()
        self.in_channels = model.in_channels
        self.endpoints = model.ENDPOINTS
        for name in self.endpoints:
            layer = getattr(model, name)
            if isinstance(layer, Unit3D):
                layer = QuantUnit3D(layer, maxima[name])
            elif isinstance(layer, Mixed):
                layer = QuantMixed(layer, name, maxima)
            elif isinstance(layer, SamePool3d):
                layer = QuantPool3d(layer)
            else:
                raise TypeError(f"unexpected I3D layer {name}: {type(layer).__name__}")
            setattr(self, name, layer)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c activations (N, 1024, T/8, H/32, W/32) in float32."""
        for name in self.endpoints:
            x = getattr(self, name)(x)
        return x.dequantize()

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1024) descriptor: Mixed_5c averaged over time and space."""
        return self.feature_map(x).mean(dim=(2, 3, 4))


def quantize_i3d(
    model: InceptionI3d, clips: Iterable[torch.Tensor] | None = None, maxima: dict | None = None
) -> QuantI3d:
    """An int8 copy of `model`'s feature path, its activation scales calibrated on `clips` (or
    taken from `maxima`, as `calibrate` returns them)."""
    torch.backends.quantized.engine = int8_engine()
    model = model.eval().float().to(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        if maxima is None:
            maxima = calibrate(
                model, calibration_clips(model.in_channels) if clips is None else clips
            )
        return QuantI3d(model, maxima).eval()


__all__ = [
    "QuantI3d",
    "cached_maxima",
    "calibrate",
    "calibration_clips",
    "int8_engine",
    "quantize_i3d",
]
