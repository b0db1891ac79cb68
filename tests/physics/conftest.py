"""Shared checks for generated events."""

from collections.abc import Callable

import numpy as np
import pytest

from npfm.physics import GeneratedEvent

C_CM_PER_NS = 29.9792458  # speed of light (exact, SI definition of the metre)


def _check_record(event: GeneratedEvent) -> None:
    n = len(event)
    assert n > 0
    assert np.all((event.parent >= -1) & (event.parent < n))
    final = event.final
    assert np.all(event.energy[final] > 0)
    p2 = event.px**2 + event.py**2 + event.pz**2
    np.testing.assert_allclose(event.energy[final] ** 2, p2[final] + event.mass[final] ** 2,
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(event.charge, np.round(event.charge * 3) / 3)
    # Causality checks the mm -> cm and mm/c -> ns conversions: no vertex is further from
    # the collision than light travels in its time.
    dr = np.sqrt((event.vx - event.info["vertex_x"]) ** 2 + (event.vy - event.info["vertex_y"])
                 ** 2 + (event.vz - event.info["vertex_z"]) ** 2)
    t0 = event.vt[event.parent == -1].min()
    assert np.all(dr <= C_CM_PER_NS * (event.vt - t0) * (1 + 1e-9) + 1e-12)


@pytest.fixture
def check_record() -> Callable[[GeneratedEvent], None]:
    """Structural and unit checks valid for every single-collision event."""
    return _check_record
