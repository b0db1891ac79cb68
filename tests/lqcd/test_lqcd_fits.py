"""Ratio, plateau and effective-mass fits on synthetic correlators with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from npfm.lqcd import fits


def test_ratio_cancels_overlaps_and_energies_at_nonzero_momentum() -> None:
    t = np.arange(16.0)
    e0, ep, z0, zp, g, ts = 0.5, 0.8, 2.0, 3.0, 1.27, 6
    c2_0, c2_p = z0 * np.exp(-e0 * t), zp * np.exp(-ep * t)
    tau = np.arange(ts + 1)
    c3 = g * np.sqrt(z0 * zp) * np.exp(-e0 * (ts - tau) - ep * tau)
    np.testing.assert_allclose(fits.ratio(c3, c2_0, c2_p, ts), g, rtol=1e-12)


def _samples(rng: np.random.Generator, n: int, excited: float) -> np.ndarray:
    t = np.arange(16.0)
    clean = np.exp(-0.6 * t) + excited * np.exp(-1.8 * t)
    return clean * (1 + 0.01 * rng.standard_normal((n, 1)) + 0.002 * rng.standard_normal((n, 16)))


def test_effective_mass_fit_finds_the_ground_state_after_excited_states_decay() -> None:
    rng = np.random.default_rng(1)
    fit = fits.effective_mass_fit(_samples(rng, 40, excited=1.0))
    assert fit is not None
    assert fit["accepted"]
    assert fit["t_min"] >= 2  # the excited state (amplitude 1, gap 1.2) is left out
    assert fit["mass"] == pytest.approx(0.6, abs=4 * fit["error"] + 2e-3)
    assert 0 < fit["error"] < 0.01
    # without the range criterion (a fit from t = 0) the mass would be far too high
    m0 = fits.log_mass(_samples(rng, 40, excited=1.0).mean(axis=0))[0]
    assert m0 > 0.8


def test_plateau_fit_and_jackknife_error() -> None:
    rng = np.random.default_rng(2)
    n, ts = 50, 6
    samples = 1.2 + 0.05 * rng.standard_normal((n, ts + 1))
    fit = fits.plateau_fit(samples.mean(axis=0), fits.leave_one_out(samples), ts, cut=1)
    assert fit is not None
    assert (fit["tau_min"], fit["tau_max"]) == (1, 5)
    # five independent points of width 0.05 / sqrt(50): error 0.05 / sqrt(250)
    assert fit["error"] == pytest.approx(0.05 / np.sqrt(250), rel=0.25)
    assert fit["value"] == pytest.approx(1.2, abs=4 * fit["error"])
    assert fits.plateau_fit(samples[0], samples[:1], ts) is None


def test_ratio_samples_form_the_ratio_of_averaged_correlators() -> None:
    rng = np.random.default_rng(4)
    ts, t = 4, np.arange(8.0)
    c2 = np.exp(-0.5 * t) * (1 + 0.05 * rng.standard_normal((20, 8)))
    c3 = 1.3 * np.exp(-0.5 * ts) * (1 + 0.05 * rng.standard_normal((20, ts + 1)))
    full, jack = fits.ratio_samples(c3, c2, c2, ts)
    np.testing.assert_allclose(full, c3.mean(axis=0) / c2.mean(axis=0)[ts])
    assert jack.shape == (20, ts + 1)
    np.testing.assert_allclose(jack[3], (c3.sum(0) - c3[3])[:ts + 1] / (c2.sum(0) - c2[3])[ts])


def test_jackknife_of_the_mean_is_the_standard_error() -> None:
    x = np.random.default_rng(3).standard_normal((30, 2))
    mean, err = fits.jackknife(x, lambda s: s)
    np.testing.assert_allclose(mean, x.mean(axis=0))
    np.testing.assert_allclose(err, x.std(axis=0, ddof=1) / np.sqrt(30))
