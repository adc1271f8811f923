"""The generator family: THUMOS'14's layout, each generator's own way of showing actions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from generator_measures import (
    background,
    class_means,
    class_pattern,
    cos,
    flank_energy,
    pooling_accuracy,
    span,
)

from talnet.cli.main import main
from talnet.data.anet_generators import ANET_GENERATORS
from talnet.data.generators import (
    GENERATORS,
    LOOKS,
    TEMPO_SPREAD,
    generator_ground_truth,
    generator_layouts,
    make_generated,
    tempo_base_lengths,
)
from talnet.data.profiles import profile_statistics
from talnet.data.renderers import ar1_noise, draw_video
from talnet.data.synth import SynthConfig, synth_rng
from talnet.data.thumos_profile import CLASSES, sample_thumos_layouts, thumos14_ground_truth
from talnet.io.features import FeatureMeta, read_meta

NAMES = list(GENERATORS)
META = FeatureMeta()  # the 30 fps / stride 4 / window 16 grid make_synthetic writes


def _render(name: str, videos: int = 8, dim: int = 16, seed: int = 0):
    """(patterns, [(layout, features, draws)]) of `videos` training videos, as written."""
    profile, cfg = GENERATORS[name], SynthConfig()
    patterns = profile.prototypes(seed, len(CLASSES), dim, cfg)
    out = []
    for i, lay in enumerate(generator_layouts(name, seed, videos, 0, cfg)):
        x = profile.render(synth_rng(seed, 2, i), lay, patterns, cfg, META)
        out.append((lay, x, draw_video(synth_rng(seed, 2, i), lay, LOOKS[name])))
    return patterns, out


def _span(x: np.ndarray, start: float, end: float) -> tuple[int, int]:
    return span(x, META, start, end)


def _pattern(patterns, name: str, cls: int, row: int) -> np.ndarray:
    return class_pattern(patterns, LOOKS[name], cls, row)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_per_seed_and_videos_independent(tmp_path, name):
    first = make_generated(name, tmp_path / "a", seed=2, videos_train=2, videos_test=1, dim=4)
    again = make_generated(name, tmp_path / "b", seed=2, videos_train=2, videos_test=1, dim=4)
    other = make_generated(name, tmp_path / "c", seed=3, videos_train=2, videos_test=1, dim=4)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 5  # annotations, meta and three videos
    for rel in files:
        assert (first / rel).read_bytes() == (again / rel).read_bytes(), rel
    feats = [rel for rel in files if rel.suffix == ".npy"]
    assert all((first / r).read_bytes() != (other / r).read_bytes() for r in feats)
    # a video is its layout rendered from its own stream, whatever the other videos
    profile, cfg = GENERATORS[name], SynthConfig()
    patterns = profile.prototypes(2, 20, 4, cfg)
    layouts = generator_layouts(name, 2, 2, 1, cfg)
    for idx in (2, 0):
        x = profile.render(synth_rng(2, 2, idx), layouts[idx], patterns, cfg, META)
        written = np.load(first / "features" / f"{layouts[idx].video_id}.npy")
        assert x.dtype == np.float32 and x.shape == written.shape and x.shape[1] == 8
        np.testing.assert_array_equal(x, written)
    meta = read_meta(first / "features")
    assert (meta.fps, meta.stride, meta.window) == (30.0, 4, 16) and meta.dims == [4, 4]
    assert meta.extra["synthetic"]["profile"] == name


@pytest.mark.parametrize("name", [n for n in NAMES if n != "tempo"])
def test_ground_truth_is_thumos14s(name):
    # the same videos, instances and labels as the thumos14 profile, which matches THUMOS'14
    assert generator_ground_truth(name, 1, 30, 30) == thumos14_ground_truth(1, 30, 30)


def test_tempo_lengths_span_20x_per_class_with_long_actions_among_short():
    cfg = SynthConfig()
    layouts = generator_layouts("tempo", 0, 100, 100, cfg)
    thumos = sample_thumos_layouts(0, 100, 100, 20, cfg)
    # the videos and their instance counts and labels stay thumos14's
    assert [len(a.actions) for a in layouts] == [len(a.actions) for a in thumos]
    assert [x.cls for a in layouts for x in a.actions] == [x.cls for a in thumos for x in a.actions]
    base = tempo_base_lengths()
    lengths: dict[int, list[float]] = {}
    for lay in layouts:
        for act in lay.actions:
            lengths.setdefault(act.cls, []).append(act.end - act.start)
    for cls, ls in lengths.items():
        assert base[cls] - 0.002 <= min(ls) and max(ls) <= TEMPO_SPREAD * base[cls] + 0.002
        if len(ls) >= 40:
            assert 14 < max(ls) / min(ls) <= TEMPO_SPREAD + 0.1, CLASSES[cls]
    every = np.concatenate(list(lengths.values()))
    assert np.mean(every > 18.0) >= 0.05
    assert 2.5 < np.median(every) < 4.0  # THUMOS'14: 3.2 s
    stats = profile_statistics(generator_ground_truth("tempo", 0, 100, 100), "test")
    same = profile_statistics(thumos14_ground_truth(0, 100, 100), "test")
    for key in ("instances", "instances per video p50", "instances per video p90"):
        assert stats[key] == same[key], key
    assert stats["video seconds p50"] == pytest.approx(same["video seconds p50"], rel=0.05)


def test_lowsignal_single_steps_classify_poorly_33_step_means_well():
    x = ar1_noise(np.random.default_rng(0), 20000, 4, 0.9)
    assert x.var() == pytest.approx(1.0, abs=0.1)
    assert np.mean(x[1:] * x[:-1]) / x.var() == pytest.approx(0.9, abs=0.02)
    patterns, videos = _render("lowsignal", videos=12, dim=64)
    means = np.stack([_pattern(patterns, "lowsignal", c, 1) for c in range(20)])
    per_step, pooled, n_steps, n_windows = pooling_accuracy(videos, means, META)
    assert n_steps > 3000 and n_windows > 60
    assert per_step < 0.4 and pooled > 0.75, f"per step {per_step:.2f}, 33-step means {pooled:.2f}"


def test_softedge_amplitude_rises_over_the_drawn_ramps():
    patterns, videos = _render("softedge")
    bins = {"onset": [[] for _ in range(4)], "offset": [[] for _ in range(4)]}
    for lay, x, draws in videos:
        assert np.all((draws.ramp >= 0.05) & (draws.ramp <= 0.30))
        for i, act in enumerate(lay.actions):
            length = act.end - act.start
            if length < 3.0:
                continue
            p = _pattern(patterns, "softedge", act.cls, 1)
            lo, hi = _span(x, act.start, act.end)
            t = META.step_times(len(x))[lo:hi]
            level = x[lo:hi] @ p / (p @ p) / draws.amp[i]  # the envelope, 0..1, plus noise
            for side, r in (
                ("onset", (t - act.start) / (draws.ramp[i, 0] * length)),
                ("offset", (act.end - t) / (draws.ramp[i, 1] * length)),
            ):
                for k, (b0, b1) in enumerate(((0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1), (1, 2))):
                    bins[side][k] += list(level[(r >= b0) & (r < b1)])
    for side, levels in bins.items():
        mean = [float(np.mean(b)) for b in levels]
        assert min(len(b) for b in levels) > 50, side
        # a linear ramp: about 1/6, 1/2, 5/6 of full within its thirds, then full
        assert mean[0] < 0.35 and mean[0] < mean[1] < mean[2] < mean[3], (side, mean)
        assert mean[1] == pytest.approx(0.5, abs=0.15) and mean[3] > 0.85, (side, mean)


def test_phases_show_start_middle_end_in_order_and_siblings_share_the_middle():
    patterns, videos = _render("phases", videos=12)
    hits, total, sibling = 0, 0, []
    for lay, x, draws in videos:
        for i, act in enumerate(lay.actions):
            length = act.end - act.start
            if length < 3.0:
                continue
            f0, f1 = draws.phase[i]
            bounds = (act.start, act.start + f0 * length, act.end - f1 * length, act.end)
            own = [_pattern(patterns, "phases", act.cls, r) for r in range(3)]
            for k in range(3):
                lo, hi = _span(x, bounds[k], bounds[k + 1])
                seg = x[lo:hi].mean(0)
                hits += int(np.argmax([cos(seg, q) for q in own]) == k)
                total += 1
                if k == 1:
                    twin = _pattern(patterns, "phases", act.cls ^ 1, 1)
                    sibling.append((cos(seg, own[1]), cos(seg, twin)))
    assert total > 150 and hits / total > 0.9, (hits, total)
    own_cos, twin_cos = np.mean(sibling, axis=0)
    assert twin_cos > 0.75 * own_cos  # the middle alone hardly tells the pair apart
    for stream in ("rgb", "flow"):
        ph = patterns.phases[stream]
        assert np.mean([cos(ph[c, 1], ph[c + 1, 1]) for c in range(0, 12, 2)]) > 0.8
        assert abs(np.mean([cos(ph[c, 0], ph[c + 1, 0]) for c in range(0, 12, 2)])) < 0.3


def test_tempo_amplitude_and_speed_vary_per_instance():
    patterns, videos = _render("tempo", videos=10)
    measured, drawn, follow = [], [], []
    for lay, x, draws in videos:
        assert np.all((draws.amp >= 0.4) & (draws.amp <= 1.6))
        assert np.all((draws.period >= 1.0 - 1e-9) & (draws.period <= 4.0 + 1e-9))
        for i, act in enumerate(lay.actions):
            if act.end - act.start < 4.0:
                continue
            a, b = (_pattern(patterns, "tempo", act.cls, r) for r in (0, 2))
            lo, hi = _span(x, act.start, act.end)
            t = META.step_times(len(x))[lo:hi]
            mid, diff = (a + b) / 2, (a - b) / 2
            measured.append(float(np.mean(x[lo:hi] @ mid / (mid @ mid))))
            drawn.append(draws.amp[i])
            if act.end - act.start > 1.5 * draws.period[i]:
                wave = np.cos(2 * math.pi * (t - act.start) / draws.period[i])
                follow.append(np.corrcoef(x[lo:hi] @ diff, wave)[0, 1])
    assert len(drawn) > 40 and max(drawn) / min(drawn) > 2.5
    assert np.corrcoef(measured, drawn)[0, 1] > 0.9
    assert len(follow) > 20 and np.mean(follow) > 0.5  # the pattern oscillates at its own speed


def test_siblings_share_80_percent_of_their_pattern():
    patterns, videos = _render("siblings", dim=64)
    groups = patterns.groups
    assert list(groups) == [c // 4 for c in range(20)]
    # CliffDiving (14) is mostly Diving (15), as in thumos14
    pairs = [(c, d) for c in range(20) for d in range(c + 1, 20) if {c, d} != {14, 15}]
    siblings = [(c, d) for c, d in pairs if groups[c] == groups[d]]
    strangers = [(c, d) for c, d in pairs if groups[c] != groups[d]]
    for stream in ("rgb", "flow"):
        mid = patterns.phases[stream][:, 1]
        assert np.mean([cos(mid[c], mid[d]) for c, d in siblings]) == pytest.approx(0.8, abs=0.07)
        assert abs(np.mean([cos(mid[c], mid[d]) for c, d in strangers])) < 0.1, stream
    # in the features: class means of siblings alike, of other classes not
    means, counts = class_means(videos, META, 20)
    seen = counts > 100

    def alike(which):
        return float(np.mean([cos(means[c], means[d]) for c, d in which if seen[c] and seen[d]]))

    assert alike(siblings) > 0.6 and abs(alike(strangers)) < 0.15, (
        alike(siblings),
        alike(strangers),
    )


def _flank_energy(name: str):
    """Mean square feature inside instances, on their flanks (half the length on each side,
    clear of other instances and bursts) and in the background, and the videos."""
    patterns, videos = _render(name)
    return list(flank_energy(videos, META)), patterns, videos


def test_scene_raises_the_features_over_half_the_length_outside_the_instance():
    (inside, flank, back), patterns, videos = _flank_energy("scene")
    assert back == pytest.approx(1.0, abs=0.1)
    assert flank > back + 0.25  # scene 0.6: 0.36 per dim on the flanks
    # the action pattern alone marks the true extent (seen along its part that the scene
    # pattern lacks: the action still projects to 1, the scene to 0)
    gain = {"in": [], "flank": []}
    for lay, x, _ in videos:
        for act in lay.actions:
            a = _pattern(patterns, "scene", act.cls, 1)
            scene = np.concatenate([patterns.scene[s][act.cls] for s in ("rgb", "flow")])
            p = a - (a @ scene) / (scene @ scene) * scene
            half = 0.5 * (act.end - act.start)
            lo, hi = _span(x, act.start, act.end)
            gain["in"] += list(x[lo:hi] @ p / (p @ p))
            lo, hi = _span(x, act.end, act.end + half)
            gain["flank"] += list(x[lo:hi] @ p / (p @ p))
    assert np.mean(gain["in"]) > 0.8 and abs(np.mean(gain["flank"])) < 0.15


def test_bursts_of_energy_outside_every_instance():
    _, videos = _render("bursts")
    minutes, bursts, energies, back = 0.0, 0, [], []
    for lay, x, draws in videos:
        minutes += lay.duration / 60.0
        bursts += len(draws.bursts)
        for b0, b1 in draws.bursts:
            assert 0.5 <= b1 - b0 <= 20.001
            assert not any(b0 < a.end and b1 > a.start for a in lay.actions)
            lo, hi = _span(x, b0, b1)
            energies.append(float((x[lo:hi] ** 2).mean()))
        back.append((background(x, META, lay, draws) ** 2).mean(1))
    assert np.mean(np.concatenate(back)) == pytest.approx(1.0, abs=0.1)
    assert bursts / minutes > 4.0  # 6 a minute, fewer where the video is busy
    assert np.median(energies) > 2.0  # 1 + 1.2^2 against 1 in the background


def test_mixed_has_groups_bursts_scene_and_ramps():
    (inside, flank, back), patterns, videos = _flank_energy("mixed")
    assert flank > back + 0.05  # scene 0.3: 0.09 per dim
    bursts = sum(len(draws.bursts) for _, _, draws in videos)
    minutes = sum(lay.duration for lay, _, _ in videos) / 60.0
    assert bursts / minutes > 3.0  # 4 a minute
    for lay, _, draws in videos:
        np.testing.assert_allclose(draws.ramp, 0.15)
        assert not any(b0 < a.end and b1 > a.start for b0, b1 in draws.bursts for a in lay.actions)
    mid = GENERATORS["mixed"].prototypes(0, 20, 64, SynthConfig()).phases["flow"][:, 1]
    same = [cos(mid[c], mid[c + 1]) for c in range(12) if c % 4 != 3]  # sport groups of 4
    assert np.mean(same) == pytest.approx(0.5, abs=0.1)


def test_cli_lists_every_profile_and_writes_a_generator(tmp_path, capsys):
    assert main(["synth", "--list-profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split()[0] for line in lines]
    assert listed == ["demo", "thumos14", "activitynet", *NAMES, *ANET_GENERATORS]
    assert all(len(line.split()) > 3 for line in lines)
    out = tmp_path / "g"
    code = main(
        ["synth", "--profile", "bursts", "--out", str(out), "--videos-train", "2"]
        + ["--videos-test", "1", "--dim", "4", "--seed", "1"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "wrote 3 videos" in printed and "instances per video p50" in printed
    assert read_meta(out / "features").extra["synthetic"]["profile"] == "bursts"
    assert main(["synth", "--profile", "tempo"]) == 2  # --out is needed unless listing
    assert "--out" in capsys.readouterr().err
    assert main(["synth", "--profile", "scene", "--out", str(out), "--classes", "5"]) == 2
