"""The ActivityNet-shaped generator family: activitynet's layout and ground truth, each look's
own way of showing actions, on the 16-frame grid and for any class count."""

from __future__ import annotations

import json

import numpy as np
import pytest
from generator_measures import (
    Video,
    background,
    class_means,
    class_pattern,
    cos,
    flank_energy,
    pooling_accuracy,
    span,
)

from talnet.cli.main import main
from talnet.data.anet_generators import (
    ANET_GENERATORS,
    anet_generator,
    anet_look,
    make_anet_generated,
)
from talnet.data.anet_profile import (
    ACTIVITYNET,
    activitynet_statistics,
    activitynet_synthetic_ground_truth,
    make_activitynet,
)
from talnet.data.generators import LOOKS
from talnet.data.renderers import Patterns, draw_video
from talnet.data.synth import SynthConfig, sample_layouts, synth_rng
from talnet.errors import TalnetError
from talnet.io.features import FeatureMeta, read_meta

NAMES = list(ANET_GENERATORS)
CFG = ACTIVITYNET.config(SynthConfig())
META = FeatureMeta(fps=CFG.fps, stride=CFG.stride, window=CFG.window)  # 16-frame steps


def _look(name: str, classes: int, dim: int):
    return anet_look(LOOKS[name.removeprefix("anet-")], classes, dim)


def _render(
    name: str, videos: int = 12, classes: int = 20, dim: int = 16, seed: int = 0
) -> tuple[Patterns, list[Video]]:
    """(patterns, [(layout, features, draws)]) of `videos` training videos, as written."""
    profile = ANET_GENERATORS[name]
    patterns = profile.prototypes(seed, classes, dim, CFG)
    out = []
    for i, lay in enumerate(sample_layouts(seed, videos, 0, classes, CFG, profile)):
        x = profile.render(synth_rng(seed, 2, i), lay, patterns, CFG, META)
        draws = draw_video(synth_rng(seed, 2, i), lay, _look(name, classes, dim))
        out.append((lay, x, draws))
    return patterns, out


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_per_seed_with_activitynets_annotations_and_grid(tmp_path, name):
    sizes = {"videos_train": 2, "videos_test": 1, "classes": 20, "dim": 16, "progress": False}
    first = make_anet_generated(name, tmp_path / "a", seed=2, **sizes)
    again = make_anet_generated(name, tmp_path / "b", seed=2, **sizes)
    other = make_anet_generated(name, tmp_path / "c", seed=3, **sizes)
    anet = make_activitynet(tmp_path / "anet", seed=2, **sizes)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 5  # annotations, meta and three videos
    for rel in files:
        assert (first / rel).read_bytes() == (again / rel).read_bytes(), rel
    feats = [rel for rel in files if rel.suffix == ".npy"]
    assert all((first / r).read_bytes() != (other / r).read_bytes() for r in feats)
    # the annotations are activitynet's, byte for byte; the features are rendered otherwise
    gt = (first / "annotations.json").read_bytes()
    assert gt == (anet / "annotations.json").read_bytes()
    assert all((first / r).read_bytes() != (anet / r).read_bytes() for r in feats)
    subsets = {v["subset"] for v in json.loads(gt)["database"].values()}
    assert subsets == {"training", "validation"}
    # a video is its layout rendered from its own stream, whatever the other videos
    profile = ANET_GENERATORS[name]
    patterns = profile.prototypes(2, 20, 16, CFG)
    layouts = sample_layouts(2, 2, 1, 20, CFG, profile)
    x = profile.render(synth_rng(2, 2, 2), layouts[2], patterns, CFG, META)
    written = np.load(first / "features" / f"{layouts[2].video_id}.npy")
    assert x.dtype == np.float32 and x.shape[1] == 32
    np.testing.assert_array_equal(x, written)
    meta = read_meta(first / "features")
    assert (meta.fps, meta.stride, meta.window) == (30.0, 16, 16) and meta.dims == [16, 16]
    assert meta.extra["synthetic"]["profile"] == name


@pytest.mark.parametrize("classes", [20, 200])
def test_layouts_and_ground_truth_are_activitynets(classes):
    cfg = SynthConfig()
    anet = sample_layouts(4, 40, 20, classes, cfg, ACTIVITYNET)
    gt = activitynet_synthetic_ground_truth(4, 40, 20, classes)
    stats = activitynet_statistics(gt)
    assert all(len({a.label for a in v.annotations}) == 1 for v in gt.values())  # one class
    for name in NAMES:
        profile = anet_generator(name)
        layouts = sample_layouts(4, 40, 20, classes, cfg, profile)
        assert layouts == anet, name  # the same videos, instances, distractors and cuts
        mine = profile.ground_truth(layouts, classes, profile.config(cfg).fps)
        assert mine == gt and activitynet_statistics(mine) == stats, name
    # the generators differ only in rendering: one video, seven renderings
    rendered = [_render(name, videos=1)[1][0][1] for name in NAMES]
    assert all(x.shape == rendered[0].shape for x in rendered)
    assert len({x.tobytes() for x in rendered}) == len(NAMES)


def test_unknown_generator_is_an_error():
    with pytest.raises(TalnetError, match="anet-mixed"):
        anet_generator("anet-tempo")


@pytest.mark.parametrize("classes", [20, 200])
def test_lowsignal_single_steps_classify_poorly_33_step_means_well(classes):
    name = "anet-lowsignal"
    patterns, videos = _render(name, videos=40, classes=classes, dim=64)
    look = _look(name, classes, 64)
    means = np.stack([class_pattern(patterns, look, c, 1) for c in range(classes)])
    per_step, pooled, n_steps, n_windows = pooling_accuracy(videos, means, META)
    assert n_steps > 3000 and n_windows > 60
    # 33 steps are 17.6 s on this grid. 20 classes: ~0.3 per step, ~0.9 pooled; 200 classes
    # (chance 0.005; the AR(1) noise alone keeps 33-step means under ~0.8): ~0.09, ~0.77
    poorly, well = (0.4, 0.75) if classes == 20 else (0.2, 0.6)
    assert per_step < poorly and pooled > well, f"per step {per_step:.2f}, pooled {pooled:.2f}"


def test_flicker_along_each_pattern_does_not_grow_with_the_class_count():
    assert _look("anet-lowsignal", 20, 64) == LOOKS["lowsignal"]  # 20 classes: the look itself
    assert _look("anet-softedge", 200, 64) == LOOKS["softedge"]  # no flicker, nothing to fit
    along = {}
    for classes in (20, 200):
        patterns, videos = _render("anet-lowsignal", videos=12, classes=classes, dim=64)
        units = patterns.phases["flow"][:, 1] / np.sqrt(64)  # unit-rms rows -> unit vectors
        back = np.concatenate([background(x, META, lay, d, pad=0.0) for lay, x, d in videos])
        along[classes] = float(np.mean((back[:, 64:] @ units.T) ** 2))
    # unit AR(1) noise plus flicker 2 (1 + 19 / 64): ~3.6; unfitted, 200 classes would give ~9
    assert along[20] == pytest.approx(3.6, abs=0.6)
    assert along[200] == pytest.approx(along[20], rel=0.2), along


def test_siblings_share_80_percent_of_their_pattern_for_any_class_count():
    patterns = anet_generator("anet-siblings").prototypes(0, 22, 64, CFG)
    groups = patterns.groups
    assert list(groups) == [c // 4 for c in range(22)]  # five groups of 4, then a pair
    pairs = [(c, d) for c in range(22) for d in range(c + 1, 22)]
    siblings = [(c, d) for c, d in pairs if groups[c] == groups[d]]
    strangers = [(c, d) for c, d in pairs if groups[c] != groups[d]]
    assert (20, 21) in siblings
    for stream in ("rgb", "flow"):
        mid = patterns.phases[stream][:, 1]
        assert np.mean([cos(mid[c], mid[d]) for c, d in siblings]) == pytest.approx(0.8, abs=0.07)
        assert abs(np.mean([cos(mid[c], mid[d]) for c, d in strangers])) < 0.1, stream
    # in the features: class means of siblings alike, of other classes not
    patterns, videos = _render("anet-siblings", videos=40, dim=64)
    means, counts = class_means(videos, META, 20)
    seen = counts > 50
    pairs = [(c, d) for c in range(20) for d in range(c + 1, 20) if seen[c] and seen[d]]

    def alike(same: bool) -> float:
        return float(
            np.mean([cos(means[c], means[d]) for c, d in pairs if (c // 4 == d // 4) == same])
        )

    assert seen.sum() >= 16
    assert alike(True) > 0.6 and abs(alike(False)) < 0.15, (alike(True), alike(False))


def test_bursts_of_energy_outside_every_instance():
    _, videos = _render("anet-bursts", videos=20)
    _, quiet = _render("anet-softedge", videos=20)  # the same layouts and signal, no bursts
    minutes, bursts, energies, back = 0.0, 0, [], []
    for lay, x, draws in videos:
        minutes += lay.duration / 60.0
        bursts += len(draws.bursts)
        for b0, b1 in draws.bursts:
            assert 0.5 <= b1 - b0 <= 20.001
            assert not any(b0 < a.end and b1 > a.start for a in lay.actions)
            lo, hi = span(x, META, b0, b1)
            energies.append(float((x[lo:hi] ** 2).mean()))
        back.append((background(x, META, lay, draws) ** 2).mean(1))
    assert np.mean(np.concatenate(back)) == pytest.approx(1.0, abs=0.1)
    assert bursts / minutes > 4.0  # 6 a minute, fewer where the instances leave no room
    assert np.median(energies) > 2.0  # 1 + 1.2^2 against 1 in the background

    def outside(rendered: list[Video]) -> float:  # mean square feature outside every instance
        return float(np.mean(np.concatenate([_outside(x, lay) for lay, x, _ in rendered])))

    assert outside(videos) > outside(quiet) + 0.2 and outside(quiet) == pytest.approx(1, abs=0.1)


def _outside(x: np.ndarray, lay) -> np.ndarray:
    """Per step mean square feature of the steps outside every instance."""
    keep = np.ones(len(x), bool)
    for a in lay.actions:
        lo, hi = span(x, META, a.start, a.end)
        keep[lo:hi] = False
    return (x[keep] ** 2).mean(1)


def test_scene_raises_the_features_around_the_instance():
    inside, flank, back = flank_energy(_render("anet-scene", videos=20)[1], META)
    assert back == pytest.approx(1.0, abs=0.1)
    assert flank > back + 0.25  # scene 0.6: 0.36 per dim where the video's edges leave a flank


def test_mixed_has_groups_bursts_scene_ramps_and_fitted_flicker():
    _, videos = _render("anet-mixed", videos=20)
    inside, flank, back = flank_energy(videos, META)
    assert flank > back + 0.05  # scene 0.3: 0.09 per dim
    bursts = sum(len(draws.bursts) for _, _, draws in videos)
    minutes = sum(lay.duration for lay, _, _ in videos) / 60.0
    assert bursts / minutes > 2.5  # 4 a minute, fewer where the instances leave no room
    for _, _, draws in videos:
        np.testing.assert_allclose(draws.ramp, 0.15)
    mid = anet_generator("anet-mixed").prototypes(0, 40, 64, CFG).phases["flow"][:, 1]
    same = [cos(mid[c], mid[c + 1]) for c in range(40) if c % 4 != 3]  # groups of 4
    assert np.mean(same) == pytest.approx(0.5, abs=0.1)
    assert _look("anet-mixed", 200, 64).flicker == pytest.approx(83 / 263)


def test_cli_writes_an_activitynet_shaped_generator(tmp_path, capsys):
    out = tmp_path / "g"
    code = main(
        ["synth", "--profile", "anet-mixed", "--out", str(out), "--classes", "20"]
        + ["--videos-train", "4", "--videos-test", "2", "--dim", "8", "--seed", "1"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "wrote 6 videos" in printed and "ANet1.3" in printed
    meta = read_meta(out / "features")
    assert meta.extra["synthetic"]["profile"] == "anet-mixed" and meta.stride == 16
    assert meta.extra["synthetic"]["classes"] == 20
    written = json.loads((out / "annotations.json").read_text())["database"]
    assert (
        written
        == json.loads(
            (
                make_activitynet(tmp_path / "a", 1, 4, 2, 20, 8, progress=False)
                / "annotations.json"
            ).read_text()
        )["database"]
    )
    args = ["synth", "--profile", "anet-bursts", "--out", str(tmp_path / "v"), "--rgb-venue", "1"]
    assert main(args) == 2
    assert "--rgb-venue" in capsys.readouterr().err
