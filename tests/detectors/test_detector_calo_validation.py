"""The calorimeter checks of npfm validate-physics (resolution fit, Grindhammer-Peters
profile)."""

from __future__ import annotations

import numpy as np
import pytest

from npfm.detectors import validation_calo


def test_resolution_fit_and_calorimeter_checks_pass() -> None:
    energy = np.array(validation_calo.ENERGIES_GEV)
    a, b = validation_calo.fit_resolution(energy, np.hypot(0.155 / np.sqrt(energy), 0.028))
    assert (a, b) == (pytest.approx(0.155), pytest.approx(0.028))
    checks, _ = validation_calo.calo_checks(200, seed=1)
    assert [c.name for c in checks if c.passed] == ["calo_resolution", "calo_profile"]
