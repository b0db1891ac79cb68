"""The classical dE/dx PID baseline: its momentum fit and dE/dx on simulated tracks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from npfm.detectors.helix import GEV_PER_T_CM
from npfm.tasks.baselines.pid import FEATURES, DedxPID, track_features
from npfm.tasks.data import load_events
from npfm.tasks.fit import score
from npfm.tasks.specs import TASKS, track_objects
from npfm.tasks.trackfit import circle_fit, fitted_momentum


def test_circle_fit_recovers_a_circle_through_noisy_points() -> None:
    rng = np.random.default_rng(1)
    angle = rng.uniform(0.2, 1.4, 40)
    x, y = 3.0 + 50.0 * np.cos(angle), -7.0 + 50.0 * np.sin(angle)
    cx, cy, r = circle_fit(x + rng.normal(0, 0.01, 40), y + rng.normal(0, 0.01, 40))
    assert (cx, cy, r) == pytest.approx((3.0, -7.0, 50.0), abs=0.05)


def test_fitted_momentum_of_a_helix_from_the_beam_line() -> None:
    field, pt, tan_dip, charge = 1.4, 0.8, 0.5, 1  # T, GeV
    radius = pt / (GEV_PER_T_CM * field)  # cm
    turn = np.linspace(0.05, 0.6, 30)  # turning angle along the helix (rad)
    x = charge * radius * np.sin(turn)
    y = charge * radius * (1 - np.cos(turn))
    z = radius * turn * tan_dip  # arc length x tan(dip)
    got_pt, got_p, got_dip = fitted_momentum(x, y, z, field)
    assert got_pt == pytest.approx(pt, rel=1e-6)
    assert got_p == pytest.approx(pt * np.hypot(1, tan_dip), rel=1e-6)
    assert got_dip == pytest.approx(tan_dip, rel=1e-6)
    assert all(np.isnan(fitted_momentum(x[:2], y[:2], z[:2], field)))


def test_features_follow_the_truth_and_bethe_bloch(sim_corpora: dict[str, Path]) -> None:
    events = load_events(sim_corpora["sphenix"])
    ratio, dedx, cls, p_true = [], [], [], []
    for event in events:
        features, truth = track_features(event)
        tracks = track_objects(event)
        ids = np.unique(tracks[tracks >= 0])
        assert features.shape == (len(ids), len(FEATURES))
        assert len(truth) == len(ids)
        px, py, pz = (event.particles[f"particle_{c}"][ids] for c in ("px", "py", "pz"))
        p = np.sqrt(px ** 2 + py ** 2 + pz ** 2)
        ratio += list(10 ** features[:, 0] / p)
        dedx += list(features[:, 1])
        cls += list(truth)
        p_true += list(p)
    ratio_a = np.asarray(ratio)
    assert np.nanmedian(np.abs(ratio_a - 1)) < 0.03  # momentum from the fit, not the truth
    d, c, pp = np.asarray(dedx), np.asarray(cls), np.asarray(p_true)
    slow = np.isfinite(d) & (pp > 0.3) & (pp < 0.7)  # K and p below minimum ionisation
    pions, heavy = d[slow & (c == 1)], d[slow & ((c == 2) | (c == 3))]
    assert len(pions) >= 10
    assert len(heavy) >= 3
    assert np.median(heavy) > 1.3 * np.median(pions)


def test_baseline_predicts_per_hit_and_scores_like_an_adapter(
        sim_corpora: dict[str, Path]) -> None:
    task = TASKS["pid_track"]
    events = load_events(sim_corpora["sphenix"])
    model = DedxPID(task).fit(events[:40])
    outputs = [model.predict(e) for e in events[40:]]
    for event, prob in zip(events[40:], outputs, strict=True):
        assert prob.shape == (event.n_hits, 5)
        np.testing.assert_allclose(prob.sum(1), 1, atol=1e-9)
        tracks = track_objects(event)
        for track in np.unique(tracks[tracks >= 0])[:3]:  # one prediction per track
            assert np.ptp(prob[tracks == track], axis=0).max() == 0
    scores = score(task, events[40:], outputs)
    assert 0 <= scores["macro_recall"]["lo"] <= scores["macro_recall"]["value"] <= 1
    assert scores["accuracy"]["value"] > 0.5  # pions dominate and sit in their band
