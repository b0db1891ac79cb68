"""The bulk read of Pythia's particle vector equals the accessor-by-accessor read."""

from __future__ import annotations

import numpy as np
import pytest

from npfm.physics.configs import PYTHIA_CONFIGS
from npfm.physics.generate import resolve_options
from npfm.physics.pythia_source import PythiaGenerator
from npfm.physics.record_view import ParticleReader, accessor_particles, bulk_particles


@pytest.mark.parametrize("physics", ["pp200", "ee_z", "ep_hera"])
def test_bulk_and_accessor_records_are_equal(physics: str) -> None:
    config = PYTHIA_CONFIGS[physics]
    gen = PythiaGenerator(config.pythia_settings(resolve_options(physics, {})), 99)
    bulk, accessors = ParticleReader(), ParticleReader(bulk=False)
    for _ in range(20):
        event = gen.next()
        fast, slow = bulk(event), accessors(event)
        assert bulk.bulk
        assert fast.dtype == slow.dtype
        assert len(fast) == event.size()
        for name in fast.dtype.names or ():
            np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)
        # spot checks against Pythia's own accessors
        i = len(fast) - 1
        assert (fast["id"][i], fast["charge"][i], fast["tau0"][i], fast["z"][i]) == (
            event[i].id(), event[i].charge(), event[i].tau0(), event[i].zProd())
        assert np.all(fast["status"][1:3] < 0)  # the incoming beams


def test_bulk_fields_follow_the_current_event() -> None:
    config = PYTHIA_CONFIGS["ee_z"]
    gen = PythiaGenerator(config.pythia_settings(resolve_options("ee_z", {})), 7)
    first = bulk_particles(gen.next()).copy()
    event = gen.next()
    second = bulk_particles(event)
    assert len(second) == event.size()
    assert not np.array_equal(first["px"][-5:], second["px"][-5:])
    assert np.array_equal(second["px"], accessor_particles(event)["px"])
