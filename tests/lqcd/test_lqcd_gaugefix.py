"""Landau and Coulomb gauge fixing: a pure gauge returns to the unit field, the fixed
functional and the wall-source correlators do not depend on the starting gauge."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from npfm.events.errors import NpfmError
from npfm.lqcd import correlators, gaugefix, heatbath
from npfm.lqcd.dirac import WilsonDirac
from npfm.lqcd.su3 import gauge_transform, random_su3, unit_field, unitarity_violation

LATTICE = (4, 4, 4, 4)


@pytest.mark.parametrize("gauge", ["landau", "coulomb"])
def test_pure_gauge_is_fixed_to_the_unit_field(gauge: str) -> None:
    gen = torch.Generator().manual_seed(3)
    u = gauge_transform(unit_field(LATTICE), random_su3((4, 4, 4, 4), gen))
    assert gaugefix.functional(u, gauge) < 0.5
    result = gaugefix.fix_gauge(u, gauge, tol=1e-12)
    assert result.converged
    assert result.theta[-1] < 1e-12 < result.theta[0]
    assert result.functional[-1] == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(gauge_transform(u, result.g), result.u)


@pytest.fixture(scope="module")
def fields() -> tuple[torch.Tensor, torch.Tensor]:
    """A non-trivial field (4 heat-bath sweeps at beta = 6 from cold) and a random gauge
    transform of it."""
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(3)
    v = unit_field(LATTICE)
    for _ in range(4):
        v = heatbath.sweep(v, 6.0, gen, 1)
    return v, gauge_transform(v, random_su3((4, 4, 4, 4), gen))


def test_coulomb_gauge_wall_sources_on_a_non_trivial_field(
        fields: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Both starting gauges reach the same Coulomb-gauge maximum, so the wall-source pion
    agrees; without gauge fixing the wall source sees the random gauge."""
    fixed = [gaugefix.fix_gauge(u, "coulomb", tol=1e-12) for u in fields]
    assert all(f.converged for f in fixed)
    assert fixed[0].functional[-1] == pytest.approx(fixed[1].functional[-1], abs=1e-12)
    assert max(unitarity_violation(fixed[1].u)) < 1e-12

    def wall_pion(u: torch.Tensor) -> np.ndarray:
        return correlators.pion(correlators.propagator(WilsonDirac(u, 1.0), "wall")[0])
    np.testing.assert_allclose(wall_pion(fixed[0].u), wall_pion(fixed[1].u), rtol=1e-6)
    raw = [wall_pion(u) for u in fields]
    assert np.abs(raw[0] / raw[1] - 1).max() > 0.1


def test_landau_gauge_functional_is_gauge_independent(
        fields: tuple[torch.Tensor, torch.Tensor]) -> None:
    fixed = [gaugefix.fix_gauge(u, "landau", tol=1e-10) for u in fields]
    assert fixed[0].functional[-1] == pytest.approx(fixed[1].functional[-1], abs=1e-10)
    assert fixed[0].report()["iterations"] == fixed[0].iterations > 1


def test_bad_gauge_options_raise() -> None:
    with pytest.raises(NpfmError, match="unknown gauge"):
        gaugefix.fix_gauge(unit_field((2, 2, 2, 2)), "axial")
    with pytest.raises(NpfmError, match="over-relaxation"):
        gaugefix.fix_gauge(unit_field((2, 2, 2, 2)), "landau", omega=2.5)
