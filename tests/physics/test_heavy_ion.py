"""Heavy-ion configurations: centrality option and central dN_ch/deta against data."""

import numpy as np
import pytest

from npfm.physics.generate import CONFIGS, resolve_options
from npfm.physics.heavy_ion import CENTRAL_B_MAX_FM, dndeta_mid
from npfm.physics.record import GeneratedEvent


def test_b_max_option_sets_a_flat_impact_parameter_cut():
    config = CONFIGS["pbpb5020"]
    minbias = config.pythia_settings(resolve_options("pbpb5020", {}))
    assert not any("bWidth" in s for s in minbias)
    central = config.pythia_settings(resolve_options("pbpb5020", {"b_max_fm": 3.49}))
    assert {"HeavyIon:bWidth = 3.49", "HeavyIon:bWidthCut = 1.0",
            "HeavyIon:forceUnitWeight = on", "Beams:idA = 1000822080"} <= set(central)
    assert CENTRAL_B_MAX_FM == {"pbpb5020": 3.49, "auau200": 3.3}
    for bad in (-1.0, "3", True):
        with pytest.raises(ValueError, match="b_max_fm must be a non-negative number"):
            resolve_options("auau200", {"b_max_fm": bad})


def test_dndeta_counts_final_charged_in_the_window():
    eta = np.array([0.0, 0.4, -0.49, 0.6, 0.1, 0.2])
    pt = np.ones_like(eta)
    event = GeneratedEvent(
        pdg=np.array([211, -211, 2212, 211, 22, 211]), charge=np.array([1, -1, 1, 1, 0, 1.]),
        px=pt, py=np.zeros_like(pt), pz=np.sinh(eta), energy=np.cosh(eta) + 1,
        mass=np.full(6, 0.14), vx=np.zeros(6), vy=np.zeros(6), vz=np.zeros(6),
        vt=np.zeros(6), parent=np.full(6, -1), primary=np.ones(6, bool),
        final=np.array([True, True, True, True, True, False]), info={})
    assert dndeta_mid(event) == 3.0  # eta 0.6 outside, photon neutral, last not final


def test_heavy_ions_write_small_shards_by_default():
    """A central Pb+Pb event holds ~0.37 GB until its shard is written: npfm simulate's
    default shard is 10 such events (20 for Au+Au), 1,000 for everything else."""
    from npfm.physics.generate import default_shard_events
    assert default_shard_events("pbpb5020") == 10
    assert default_shard_events("auau200") == 20
    assert default_shard_events("pp200") == default_shard_events("gun") == 1000
    with pytest.raises(ValueError, match="unknown configuration"):
        default_shard_events("ppb")
