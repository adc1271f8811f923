"""The extraction pipeline, videos in, per-video features out, with no core idle.

One decoder process reads the videos in order and streams frame chunks; a pool of flow
processes turns chunks into flow; the main process runs I3D (RGB on frames scaled to [-1, 1],
flow on 2-channel flow of the same windows) while they work ahead. With the InceptionV3
backbone there is no flow: the main process runs it on each step's middle frame.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talnet.errors import TalnetError
from talnet.video.decode import DecodeOptions, decode_worker
from talnet.video.flow import FlowWorkers, pad_last
from talnet.video.options import ExtractOptions
from talnet.video.streaming import StreamingRunner, step_features
from talnet.video.weights import (
    load_i3d_weights,
    load_inception_v3_weights,
    random_i3d,
    random_inception_v3,
)
from talnet.video.windows import CentreFrames, StreamRunner, Unwindowed, Windows

# progress(event, i, n): ("start", i, expected frames or None), then ("frames", i, n new).
Progress = Callable[[str, int, int | None], None]


def load_stream(stream: str, options: ExtractOptions) -> Callable:
    """One stream's feature function: I3D clips (N, C, T, H, W) -> (N, 1024), or InceptionV3
    frames (N, 3, H, W) -> (N, 2048); with streaming clips, sequences (1, C, L, H, W) -> I3D's
    Mixed_5c per temporal step (1, 1024, L / 8)."""
    from talnet.video.compile import make_feature_extractor

    path = options.weight_file(stream)  # named weights are converted here, on first use
    if options.backbone == "inceptionv3":
        model = random_inception_v3() if path is None else load_inception_v3_weights(path)
    else:
        channels = 3 if stream == "rgb" else 2
        model = random_i3d(channels) if path is None else load_i3d_weights(path, channels)
        if options.precision == "int8":
            from talnet.video.quantize import cached_maxima, quantize_i3d

            weight_id = options.weight_id(stream)
            key = "random" if weight_id is None else weight_id["crc32"]
            frames = max(options.window, 16)
            maxima = cached_maxima(model, key, frames, options.size)
            model = quantize_i3d(model, maxima=maxima)
    if options.clip_mode == "streaming":
        return step_features(model.to(options.device), options.device)
    return make_feature_extractor(model, compile=options.compile, device=options.device)


# -- the decoder process --------------------------------------------------------------------


class _Decoder:
    """The decoder process and its bounded queue of chunks (bounded so memory stays flat).

    The process starts at once and waits for its videos (`start`), so the second or two a
    spawned Python needs to import PyAV and numpy overlaps the models' loading instead of
    leaving the cores idle at the first video.
    """

    def __init__(self, options: DecodeOptions, depth: int = 6) -> None:
        context = multiprocessing.get_context("spawn")
        self.queue = context.Queue(maxsize=depth)
        self.jobs = context.Queue(maxsize=1)
        self.process = context.Process(
            target=decode_worker, args=(self.jobs, options, self.queue), daemon=True
        )
        self.process.start()

    def start(self, paths: Sequence[Path]) -> None:
        """Decode these videos, in order (once per process)."""
        self.jobs.put([str(p) for p in paths])

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
        for q in (self.queue, self.jobs):
            q.close()
            q.cancel_join_thread()  # a half-read queue must not block the exit


# -- the pipeline ---------------------------------------------------------------------------------


@dataclass
class VideoFeatures:
    """One video's outcome: {stream: (T, D) float32} and its frame count, or the error."""

    index: int  # position in the list given to Extractor.iter
    path: Path
    features: dict[str, np.ndarray] | None
    error: str | None = None  # why it failed (naming the file), when features is None
    frames: int = 0  # frames decoded at the extraction fps


class Extractor:
    """Models, flow workers and the decode pipeline of one extraction run."""

    def __init__(self, options: ExtractOptions) -> None:
        self.options = options
        self._threads_before = None
        if options.threads:
            import torch

            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(options.threads)  # process-wide; restored by close()
        # seconds the main process spent per stage, for `talnet bench --only video`
        self.clock = {"backbone": 0.0, "wait_decode": 0.0, "wait_flow": 0.0}
        self._closed = False
        self._decoder: _Decoder | None = _Decoder(options.decode_options())  # warm for iter()
        try:
            self.features = {s: self._timed(load_stream(s, options)) for s in options.streams}
        except BaseException:
            self._decoder.close()
            raise
        use_flow = "flow" in options.streams
        self.flow_workers = (
            FlowWorkers(options.flow, options.workers, options.device) if use_flow else None
        )

    def _timed(self, fn: Callable) -> Callable:
        """`fn` with its time added to the backbone's share of the clock."""

        def run(*args: object) -> object:
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.clock["backbone"] += time.perf_counter() - start

        return run

    def wait(self, stage: str, result: object) -> object:
        """`result.get()` (a decoder queue or a flow job), its blocking time on the clock."""
        start = time.perf_counter()
        try:
            return result.get()
        finally:
            self.clock[stage] += time.perf_counter() - start

    def close(self) -> None:
        self._closed = True
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        if self.flow_workers is not None:
            self.flow_workers.close()
        if self._threads_before is not None:
            import torch

            torch.set_num_threads(self._threads_before)

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iter(
        self, videos: Sequence[str | Path], progress: Progress | None = None
    ) -> Iterator[VideoFeatures]:
        """Extract each video in order, yielding its VideoFeatures as soon as it is done.

        A video that fails yields features None and the error; the others still run. The
        decoder process stops when the iterator is exhausted or closed (use
        contextlib.closing to stop early safely).
        """
        videos = [Path(v) for v in videos]
        decoder, self._decoder = self._decoder or _Decoder(self.options.decode_options()), None
        decoder.start(videos)
        try:
            current: _VideoState | None = None
            while True:
                kind, i, payload = self.wait("wait_decode", decoder)
                if kind == "done":
                    break
                if kind == "start":
                    current = _VideoState(self)
                    if progress:
                        progress("start", i, payload)
                elif kind == "chunk" and current is not None:
                    current.add_chunk(payload)
                    if progress:
                        progress("frames", i, len(payload))
                elif kind == "end" and current is not None:
                    features, current = current.finish(), None
                    yield VideoFeatures(i, videos[i], features, frames=payload)
                elif kind == "error":
                    current = None  # drop partial features: no partial output
                    yield VideoFeatures(i, videos[i], None, error=payload)
        finally:
            decoder.close()
            if self._decoder is None and not self._closed:  # warm the next call's decoder
                self._decoder = _Decoder(self.options.decode_options())


class _VideoState:
    """One video in flight: RGB windows (or middle frames) go to the backbone at once, flow
    chunks to the workers."""

    def __init__(self, extractor: Extractor) -> None:
        opts = extractor.options
        self.workers = extractor.flow_workers
        self.extractor = extractor
        if opts.clip_mode == "streaming":  # the runner cuts its own windows
            self.runners = {
                s: StreamingRunner(s, extractor.features[s], opts.window, opts.stride)
                for s in opts.streams
            }
            self.windows = {s: Unwindowed() for s in opts.streams}
        else:
            self.runners = {
                s: StreamRunner(s, extractor.features[s], opts.batch) for s in opts.streams
            }
            cut = CentreFrames if opts.backbone == "inceptionv3" else Windows
            self.windows = {s: cut(opts.window, opts.stride) for s in opts.streams}
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
            self._take_flow(self.clock_wait(self.pending.popleft()))

    def finish(self) -> dict[str, np.ndarray]:
        if self.workers is not None and self.prev_chunk is not None:
            self.pending.append(self.workers.submit(self.prev_chunk))
            while len(self.pending) > 1:
                self._take_flow(self.clock_wait(self.pending.popleft()))
            last = self.clock_wait(self.pending.popleft())
            size = self.prev_chunk.shape[1:3]
            self._take_flow(pad_last(last, len(self.prev_chunk), size))
        out = {}
        for stream, runner in self.runners.items():
            runner.add(self.windows[stream].finish())
            out[stream] = runner.result()
        return out

    def clock_wait(self, job: object) -> np.ndarray:
        """A flow job's result; the time spent blocked on it goes on the extractor's clock."""
        return self.extractor.wait("wait_flow", job)

    def _take_flow(self, flows: np.ndarray) -> None:
        self.runners["flow"].add(self.windows["flow"].push(flows))


__all__ = ["Extractor", "Progress", "VideoFeatures", "load_stream"]
