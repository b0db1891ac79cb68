"""Thermal correlators: the reconstructed correlator of a fixed spectrum, the free heavy-
quark screening mass at Nt = 2, gauge invariance, Polyakov-loop susceptibility."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from npfm.cli import app
from npfm.events.errors import NpfmError
from npfm.lqcd import correlators, thermal
from npfm.lqcd.su3 import gauge_transform, random_field, random_su3, unit_field

runner = CliRunner()


def _spectral(tau: np.ndarray, n_slices: int, energies: tuple[float, ...]) -> np.ndarray:
    return sum(np.exp(-e * tau) + np.exp(-e * (n_slices - tau)) for e in energies)


def test_reconstructed_correlator_of_an_unchanged_spectrum() -> None:
    """sum_m [e^{-E(tau + m Nt)} + e^{-E(N Nt - tau - m Nt)}] = S_E (e^{-E tau} +
    e^{-E(Nt - tau)}), S_E = sum_m e^{-E m Nt}: G_rec is the Nt correlator of each state
    times S_E."""
    nt, n = 4, 3
    energies = (0.7, 1.9)
    cold = _spectral(np.arange(n * nt), n * nt, energies)
    tau = np.arange(nt)
    expected = sum((np.exp(-e * tau) + np.exp(-e * (nt - tau)))
                   * sum(np.exp(-e * m * nt) for m in range(n)) for e in energies)
    np.testing.assert_allclose(thermal.reconstructed(cold, nt), expected, rtol=1e-12)
    with pytest.raises(NpfmError, match="multiple of Nt"):
        thermal.reconstructed(cold, 5)


def test_free_screening_mass_sees_the_lowest_matsubara_momentum() -> None:
    """At Nt = 2 the antiperiodic quarks carry p_t = pi/2: the pseudoscalar screening mass is
    2 E with cosh E = 1 + (1 + (m + 1)^2) / (2 (2 + m)) (free Wilson quark, r = 1, with
    sin^2 p_t = 1 - cos p_t = 1), not the p_t = 0 value 2 ln(1 + m)."""
    mass = 1.0
    spatial = thermal.temporal_and_spatial(unit_field((2, 2, 12, 2)), mass)[
        "pseudoscalar/spatial"]
    m_eff = correlators.effective_mass(spatial)
    expected = 2 * math.acosh(1 + (1 + (mass + 1) ** 2) / (2 * (2 + mass)))
    assert m_eff[5] == pytest.approx(expected, rel=5e-3)
    assert abs(m_eff[5] - 2 * math.log(1 + mass)) > 0.5


def test_thermal_correlators_are_gauge_invariant_and_summarised() -> None:
    gen = torch.Generator().manual_seed(4)
    u = random_field((2, 2, 4, 2), gen)
    ug = gauge_transform(u, random_su3((2, 4, 2, 2), gen))
    hot = [thermal.temporal_and_spatial(f, 1.0) for f in (u, ug)]
    for key in hot[0]:
        np.testing.assert_allclose(hot[0][key], hot[1][key], rtol=1e-8)
    cold = [thermal.temporal_and_spatial(unit_field((2, 2, 4, 4)), 1.0)] * 2
    summary = thermal.thermal_summary(hot, cold, nt=2)
    ps = summary["pseudoscalar"]
    rec = thermal.reconstructed(cold[0]["pseudoscalar/temporal"], 2)
    np.testing.assert_allclose(ps["reconstructed"], rec)
    np.testing.assert_allclose(ps["ratio_to_reconstructed"],
                               hot[0]["pseudoscalar/temporal"] / rec, rtol=1e-8)


def test_polyakov_loop_susceptibility() -> None:
    loops = np.array([0.1 + 0.2j, -0.3j, 0.05, 0.2 + 0.1j, -0.1 - 0.1j])
    value, err = thermal.polyakov_susceptibility(loops, spatial_volume=64)
    p = np.abs(loops)
    assert value == pytest.approx(64 * (np.mean(p ** 2) - np.mean(p) ** 2))
    assert err > 0


def test_thermal_command_end_to_end(tmp_path: Path) -> None:
    """Hot 2^2 x 4 x 2 and reference 2^2 x 4 x 4 ensembles through ``npfm lqcd thermal``."""
    paths = {}
    for name, lattice in (("hot", "2x2x4x2"), ("cold", "2x2x4x4")):
        paths[name] = tmp_path / name
        result = runner.invoke(app, ["lqcd", "generate", "--out", str(paths[name]),
                                     "--lattice", lattice, "--beta", "6.0", "--configs", "2",
                                     "--therm", "2", "--separation", "1", "--seed", "3"])
        assert result.exit_code == 0, result.output
    out = tmp_path / "thermal"
    result = runner.invoke(app, ["lqcd", "thermal", str(paths["hot"]), str(paths["cold"]),
                                 "--out", str(out), "--mass", "1.0", "--tol", "1e-8"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "thermal.json").read_text())
    ps = record["correlators"]["pseudoscalar"]
    assert len(ps["temporal"]) == 2
    assert len(ps["spatial"]) == 4
    assert all(r > 0 for r in ps["ratio_to_reconstructed"])
    assert record["polyakov_loop"]["susceptibility"] >= 0
    wrong = runner.invoke(app, ["lqcd", "thermal", str(paths["cold"]), str(paths["hot"]),
                                "--out", str(out)])
    assert wrong.exit_code == 2
    assert "multiple of Nt" in wrong.output
