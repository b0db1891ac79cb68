"""Gauge field generation and observables: SU(3), gauge invariance, reproducibility, the
Kennedy-Pendleton sampler, over-relaxation, autocorrelation analysis, and the beta = 6.0
plaquette against the literature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import iv

from npfm.lqcd import heatbath, observables
from npfm.lqcd.statistics import estimate
from npfm.lqcd.su3 import gauge_transform, random_field, random_su3, unit_field, unitarity_violation

#: <plaquette> = <Re tr U_P>/3 of quenched SU(3) with the Wilson action at beta = 6.0,
#: large-volume value 0.593683(4): G. Boyd et al., "Thermodynamics of SU(3) lattice gauge
#: theory", Nucl. Phys. B 469 (1996) 419 (zero-temperature plaquettes), rounded to 0.5937.
PLAQUETTE_BETA6 = 0.5937


def _thermalised(lattice: tuple[int, int, int, int], sweeps: int, seed: int = 3
                 ) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    u = random_field(lattice, gen)
    for _ in range(sweeps):
        u = heatbath.sweep(u, 5.7, gen, n_or=1)
    return u


@pytest.fixture(scope="module")
def config() -> torch.Tensor:
    return _thermalised((4, 4, 4, 6), 3)


def test_links_stay_in_su3(config: torch.Tensor) -> None:
    off, det = unitarity_violation(config)
    assert off < 1e-13
    assert det < 1e-13


def test_observables_are_gauge_invariant(config: torch.Tensor) -> None:
    g = random_su3(tuple(config.shape[1:5]), torch.Generator().manual_seed(11))
    rotated = gauge_transform(config, g)
    assert not torch.allclose(rotated, config)
    assert observables.plaquette(rotated) == pytest.approx(observables.plaquette(config),
                                                           abs=1e-13)
    loops, loops_rot = (np.array(observables.wilson_loops(c, 2, 3)) for c in (config, rotated))
    np.testing.assert_allclose(loops_rot, loops, atol=1e-13)
    assert abs(observables.polyakov_loop(rotated) - observables.polyakov_loop(config)) < 1e-13


def test_unit_field_observables() -> None:
    u = unit_field((4, 4, 4, 8))
    assert observables.plaquette(u) == 1.0
    assert observables.wilson_loop(u, 2, 3) == 1.0
    assert observables.polyakov_loop(u) == 1.0
    spatial, temporal = observables.spatial_temporal_plaquettes(u)
    assert spatial == temporal == 1.0


def test_polyakov_loop_center_symmetry_breaking_at_high_temperature() -> None:
    """Nt = 2 at beta = 6.0 is deconfined: |P| is far above its confined-phase size."""
    gen = torch.Generator().manual_seed(5)
    u = unit_field((6, 6, 6, 2))
    for _ in range(15):
        u = heatbath.sweep(u, 6.0, gen, n_or=1)
    hot = abs(observables.polyakov_loop(u))
    u = unit_field((6, 6, 6, 6))
    for _ in range(15):
        u = heatbath.sweep(u, 5.5, gen, n_or=1)
    assert hot > 0.3
    assert abs(observables.polyakov_loop(u)) < 0.1


def test_same_seed_same_chain_other_seed_other_chain() -> None:
    a, b = _thermalised((4, 4, 4, 4), 2, seed=1), _thermalised((4, 4, 4, 4), 2, seed=1)
    c = _thermalised((4, 4, 4, 4), 2, seed=2)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_kennedy_pendleton_matches_the_exact_mean() -> None:
    """For density sqrt(1 - x0^2) exp(alpha x0), <x0> = I_2(alpha) / I_1(alpha)."""
    gen = torch.Generator().manual_seed(0)
    n = 100_000
    for alpha in (0.3, 3.0, 12.0):
        x = heatbath.kennedy_pendleton(torch.full((n,), alpha, dtype=torch.float64), gen)
        torch.testing.assert_close(x.norm(dim=1), torch.ones(n, dtype=torch.float64))
        x0 = x[:, 0].numpy()
        assert abs(x0.mean() - iv(2, alpha) / iv(1, alpha)) < 5 * x0.std() / np.sqrt(n)
        assert np.abs(x[:, 1:].mean(0).numpy()).max() < 5 * 0.6 / np.sqrt(n)


def test_over_relaxation_keeps_the_local_action(config: torch.Tensor) -> None:
    links = config[0].reshape(-1, 3, 3)
    staples = heatbath.staple(config, 0).reshape(-1, 3, 3)
    new = heatbath._update_links(links, staples, 6.0, generator=None)
    def action(u: torch.Tensor) -> torch.Tensor:
        return torch.diagonal(u @ staples, dim1=-2, dim2=-1).sum(-1).real
    torch.testing.assert_close(action(new), action(links), atol=1e-12, rtol=0)
    assert (new - links).abs().max() > 0.1


def test_tau_int_of_an_ar1_chain() -> None:
    """AR(1) with coefficient phi has tau_int = (1 + phi) / (2 (1 - phi))."""
    rng = np.random.default_rng(1)
    phi, n = 0.8, 40_000
    x = np.empty(n)
    x[0] = 0.0
    noise = rng.normal(size=n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    est = estimate(x)
    assert abs(est.tau_int - 4.5) < 3 * est.tau_int_error
    assert est.binned_error == pytest.approx(est.error, rel=0.25)


@pytest.mark.slow
def test_plaquette_at_beta_6_matches_literature() -> None:
    """8^4, beta = 6.0, cold start: 20 thermalisation sweeps, then 130 measured sweeps
    (1 heat-bath + 1 over-relaxation each); |<P> - 0.5937| < 3 sigma with sigma from
    the autocorrelation-corrected error. On 8^4 the plaquette sits about 5e-4 above the
    large-volume value (docs/lqcd.md: 0.59437(16) from 400 sweeps, 0.59389(13) on 16^4),
    which this statistical precision does not resolve."""
    gen = torch.Generator().manual_seed(2026)
    u = unit_field((8, 8, 8, 8))
    history = []
    for _ in range(150):
        u = heatbath.sweep(u, 6.0, gen, n_or=1)
        history.append(observables.plaquette(u))
    est = estimate(history[20:])
    print(f"<P> = {est.mean:.5f} +- {est.error:.5f} (binned {est.binned_error:.5f}), "
          f"tau_int = {est.tau_int:.2f} +- {est.tau_int_error:.2f} sweeps, n = {est.n}")
    assert est.error < 5e-4  # a real test: the error is small enough to discriminate
    assert abs(est.mean - PLAQUETTE_BETA6) < 3 * est.error
    off, det = unitarity_violation(u)
    assert off < 1e-13
    assert det < 1e-13
