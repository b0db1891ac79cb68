"""Wilson(-clover) operator, even-odd CG and meson correlators: free-field analytic
propagator, gamma_5-hermiticity, solver accuracy, and gauge invariance of correlators."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from npfm.lqcd import correlators
from npfm.lqcd.dirac import WilsonDirac, clover_field, gamma_matrices
from npfm.lqcd.solver import cgnr, solve
from npfm.lqcd.su3 import gauge_transform, random_field, random_su3, unit_field

FREE = (4, 4, 4, 8)  # lx, ly, lz, lt


def free_propagator(lattice: tuple[int, int, int, int], mass: float) -> torch.Tensor:
    """S(x) = 1/V sum_p e^{ipx} D(p)^-1 with D(p) = m + sum(1 - cos p) + i sum gamma sin p,
    antiperiodic in t (p_t = (2 pi n + pi) / T); returns (T, Z, Y, X, 4, 4)."""
    lx, ly, lz, lt = lattice
    g = gamma_matrices()
    eye = torch.eye(4, dtype=torch.complex128)
    grids = torch.meshgrid(*[2 * math.pi * torch.arange(n, dtype=torch.float64) / n
                             for n in (lt, lz, ly, lx)], indexing="ij")
    p_t = grids[0] + math.pi / lt
    momenta = {0: grids[3], 1: grids[2], 2: grids[1], 3: p_t}  # mu -> p_mu
    d = (mass * eye).expand(lt, lz, ly, lx, 4, 4).clone()
    for mu, p in momenta.items():
        d = d + (1 - torch.cos(p))[..., None, None] * eye
        d = d + 1j * torch.sin(p)[..., None, None] * g[mu]
    inv = torch.linalg.inv(d)
    s = torch.fft.ifftn(inv, dim=(0, 1, 2, 3))
    t = torch.arange(lt, dtype=torch.float64)
    return s * torch.exp(1j * math.pi * t / lt)[:, None, None, None, None, None]


def test_gamma_matrices_form_a_clifford_algebra() -> None:
    g = gamma_matrices()
    eye = torch.eye(4, dtype=torch.complex128)
    for mu in range(5):
        torch.testing.assert_close(g[mu], g[mu].conj().T)
        for nu in range(5):
            torch.testing.assert_close(g[mu] @ g[nu] + g[nu] @ g[mu], 2 * eye * (mu == nu))


@pytest.mark.parametrize("mass", [0.1, 0.5])
def test_point_source_matches_free_field_propagator(mass: float) -> None:
    prop, iterations = correlators.propagator(WilsonDirac(unit_field(FREE), mass))
    analytic = free_propagator(FREE, mass)
    colour_eye = torch.eye(3, dtype=torch.complex128)
    expected = torch.einsum("...st,ab->...satb", analytic, colour_eye)
    assert (prop - expected).abs().max() < 1e-8
    assert max(iterations) < 200


def test_wall_source_matches_summed_free_propagator() -> None:
    mass = 0.3
    prop, _ = correlators.propagator(WilsonDirac(unit_field(FREE), mass), source="wall")
    wall = free_propagator(FREE, mass).sum(dim=(1, 2, 3))  # sum over source positions
    for s in range(4):
        for t in range(FREE[3]):
            torch.testing.assert_close(prop[t, :, :, :, :, 0, s, 0],
                                       wall[t, :, s].expand(4, 4, 4, 4), atol=1e-8, rtol=0)


@pytest.fixture(scope="module")
def rough() -> torch.Tensor:
    """A random (strong-coupling) gauge field on 4^3 x 4."""
    return random_field((4, 4, 4, 4), torch.Generator().manual_seed(21))


def test_clover_term_vanishes_on_unit_field_and_is_hermitian(rough: torch.Tensor) -> None:
    assert clover_field(unit_field((4, 4, 4, 4)), 1.0).abs().max() < 1e-15
    term = clover_field(rough, 1.0)
    torch.testing.assert_close(term, term.conj().transpose(-1, -2))
    assert term.abs().max() > 0.1


def test_operator_is_gamma5_hermitian_as_a_dense_matrix() -> None:
    u = random_field((2, 2, 2, 2), torch.Generator().manual_seed(4))
    dirac = WilsonDirac(u, 0.1, csw=1.2)
    n = 16 * 12
    basis = torch.eye(n, dtype=torch.complex128).reshape(n, 2, 2, 2, 2, 4, 3)
    dense = torch.stack([dirac(b).reshape(-1) for b in basis], dim=1)
    g5 = torch.kron(torch.eye(16, dtype=torch.complex128),
                    torch.kron(gamma_matrices()[4], torch.eye(3, dtype=torch.complex128)))
    torch.testing.assert_close(g5 @ dense @ g5, dense.conj().T)


@pytest.mark.parametrize("csw", [0.0, 1.0])
def test_even_odd_cg_solves_and_agrees_with_unpreconditioned_cg(rough: torch.Tensor,
                                                                 csw: float) -> None:
    dirac = WilsonDirac(rough, 0.4, csw=csw)
    b = torch.randn((4, 4, 4, 4, 4, 3), dtype=torch.complex128,
                    generator=torch.Generator().manual_seed(1))
    result = solve(dirac, b, tol=1e-11)
    assert result.converged
    assert result.residual < 1e-9
    plain, plain_iterations = cgnr(dirac, dirac.dagger, b, tol=1e-11)
    assert (plain - result.x).abs().max() < 1e-8
    assert result.iterations < plain_iterations


@pytest.mark.parametrize("csw", [0.0, 1.0])
def test_correlators_are_gauge_invariant(rough: torch.Tensor, csw: float) -> None:
    g = random_su3((4, 4, 4, 4), torch.Generator().manual_seed(8))
    rotated = gauge_transform(rough, g)
    props = [correlators.propagator(WilsonDirac(u, 0.5, csw), tol=1e-12)[0]
             for u in (rough, rotated)]
    assert (props[0] - props[1]).abs().max() > 1e-3  # the propagator itself is covariant
    for channel in (correlators.pion, correlators.rho):
        a, b = channel(props[0]), channel(props[1])
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-14)
        assert np.all(a > 0)


def test_free_correlators_are_symmetric_and_masses_plausible() -> None:
    mass = 0.1
    prop, _ = correlators.propagator(WilsonDirac(unit_field(FREE), mass))
    pion, rho = correlators.pion(prop), correlators.rho(prop)
    for c in (pion, rho):
        assert np.all(c > 0)
        np.testing.assert_allclose(c[1:], c[1:][::-1], rtol=1e-10)
    # two free quarks of pole mass log(1 + m) at zero momentum would give 2 log(1.1);
    # lowest momenta on a 4^3 x 8 lattice push the effective mass above that
    assert correlators.effective_mass(pion)[2] > 2 * math.log(1 + mass)


def test_effective_mass_recovers_a_cosh() -> None:
    t = np.arange(16)
    corr = 3.0 * np.cosh(0.42 * (t - 8))
    np.testing.assert_allclose(correlators.effective_mass(corr), 0.42, rtol=1e-8)
