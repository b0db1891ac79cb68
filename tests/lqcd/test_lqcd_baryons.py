"""Nucleon two- and three-point functions: charges on the free field, the exact Ward
identity of the conserved current, the quark-model axial charge, gauge invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from npfm.lqcd import baryons
from npfm.lqcd.dirac import WilsonDirac, gamma_matrices
from npfm.lqcd.su3 import gauge_transform, random_field, random_su3, unit_field

MASS = 1.0  # heavy quarks: a short time extent suffices
ZERO = baryons.momentum_key((0, 0, 0))


@pytest.fixture(scope="module")
def free() -> baryons.NucleonData:
    """Unit gauge field on 2^3 x 16, sink at t_s = 4 (measured: states wrapping around the
    antiperiodic time boundary shift the ratios by 2e-5, excited states the local ones by
    3e-3)."""
    torch.set_num_threads(1)
    return baryons.nucleon_correlators(WilsonDirac(unit_field((2, 2, 2, 16)), MASS), 4,
                                       momenta=((0, 0, 0),))


def test_charge_conjugation_matrix() -> None:
    g, c = gamma_matrices(), baryons.charge_conjugation()
    for mu in range(4):
        torch.testing.assert_close(c @ g[mu] @ torch.linalg.inv(c), -g[mu].T)


def test_free_nucleon_two_point_decays_with_three_quark_energies(free: baryons.NucleonData
                                                                 ) -> None:
    c2 = free.two_point[f"P+/{ZERO}"]
    assert np.all(c2.real[:8] > 0)
    assert np.abs(c2.imag).max() < 1e-12 * abs(c2[0])
    # ground state: three k = 0 Wilson quarks, E = 3 ln(1 + m) (r = 1); excited states
    # (two quarks at momentum pi) lie 2 ln(4/2) higher, so by t = 5 the ratio is exact
    ratio = c2.real[5] / c2.real[6]
    assert ratio == pytest.approx((1 + MASS) ** 3, rel=1e-3)


@pytest.mark.parametrize(("flavour", "charge"), [("u", 2.0), ("d", 1.0)])
def test_conserved_vector_charge_counts_quarks(free: baryons.NucleonData, flavour: str,
                                               charge: float) -> None:
    c2 = free.two_point[f"P+/{ZERO}"][4]
    ratio = free.three_point[f"P+/J4/{flavour}/{ZERO}"][:4] / c2
    np.testing.assert_allclose(ratio, charge, atol=1e-4)


def test_local_charges_on_the_free_field(free: baryons.NucleonData) -> None:
    """Local currents of k = 0 Wilson quarks carry 1/(1 + a m0) (tree-level Z_V (1 + b_V a m)
    with b_V = 1 to O(a)); g_V = 1 and the quark-model g_A = 5/3 (Delta u = 4/3,
    Delta d = -1/3) times that factor."""
    c2 = free.two_point[f"P+/{ZERO}"][4]
    tau = slice(1, 4)

    def isovector(proj: str, current: str) -> np.ndarray:
        return (free.three_point[f"{proj}/{current}/u/{ZERO}"][tau]
                - free.three_point[f"{proj}/{current}/d/{ZERO}"][tau]) / c2
    np.testing.assert_allclose(isovector("P+", "V4").real, 1 / (1 + MASS), rtol=5e-3)
    np.testing.assert_allclose((isovector("P3", "A3") / 1j).real, 5 / 3 / (1 + MASS),
                               rtol=5e-3)


@pytest.fixture(scope="module")
def rough() -> tuple[torch.Tensor, torch.Tensor]:
    """A random (hot) field on 2^3 x 4 and a random gauge transform of it."""
    gen = torch.Generator().manual_seed(5)
    u = random_field((2, 2, 2, 4), gen)
    return u, gauge_transform(u, random_su3((4, 2, 2, 2), gen))


def test_ward_identity_and_gauge_invariance_on_a_rough_field(
        rough: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Q(tau) inside (0 <= tau < t_s) minus outside equals the quark number times C2 on any
    configuration; every correlator is unchanged by a gauge transformation."""
    torch.set_num_threads(1)
    moms = ((0, 0, 0), (1, 0, 0))
    data = [baryons.nucleon_correlators(WilsonDirac(u, MASS), 2, momenta=moms) for u in rough]
    c2 = data[0].two_point[f"P+/{ZERO}"][2]
    for flavour, charge in (("u", 2), ("d", 1)):
        q = data[0].three_point[f"P+/J4/{flavour}/{ZERO}"]
        assert abs(q[1] - q[3] - charge * c2) < 1e-8 * abs(c2)
        assert abs(q[0] - q[1]) < 1e-8 * abs(c2)
    for table in ("two_point", "three_point"):
        first, second = getattr(data[0], table), getattr(data[1], table)
        assert first.keys() == second.keys()
        scale = max(np.abs(v).max() for v in first.values())
        for key in first:
            np.testing.assert_allclose(first[key], second[key], atol=1e-9 * scale)
