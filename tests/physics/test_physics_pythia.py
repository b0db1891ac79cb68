"""Pythia configurations: physics validation, truth, vertices, determinism."""

import time

import numpy as np
import pytest

from npfm.physics import GeneratedEvent, generate

# PDG, as recorded in the project's reference facts (shared/reference/facts.md):
# <n_ch> = 20.76 +- 0.16 in hadronic Z decays, counting K0S and Lambda decay products.
PDG_NCH_Z = 20.76
# PDG Review of Particle Physics, Z boson summary table (LEP/SLD, Phys. Rept. 427 (2006)
# 257): R_b = Gamma(b bbar)/Gamma(had) = 0.21629 +- 0.00066, R_c = 0.1721 +- 0.0030.
PDG_RB, PDG_RC = 0.21629, 0.1721
N_NCH = 5000  # ee_z events for the multiplicity: stat. error about 0.09 (0.45%)


@pytest.fixture(scope="module")
def ee_z_lep_convention() -> list[GeneratedEvent]:
    """ee_z with K0S, Lambda, Sigma, Xi, Omega decayed, as LEP multiplicities count them."""
    return list(generate("ee_z", N_NCH, seed=20_760, long_lived_decays=True))


def test_ee_z_charged_multiplicity_matches_pdg(ee_z_lep_convention):
    n_ch = np.array([np.count_nonzero(e.final & (e.charge != 0)) for e in ee_z_lep_convention])
    mean, err = n_ch.mean(), n_ch.std(ddof=1) / np.sqrt(len(n_ch))
    assert err < 0.15
    assert abs(mean - PDG_NCH_Z) < 0.03 * PDG_NCH_Z, f"<n_ch> = {mean:.2f} +- {err:.2f}"


def test_ee_z_quark_flavours(ee_z_lep_convention, check_record):
    flavour = np.array([e.info["truth_quark_flavour"] for e in ee_z_lep_convention])
    assert set(flavour) == {1, 2, 3, 4, 5}
    for rate, pdg_value in ((np.mean(flavour == 5), PDG_RB), (np.mean(flavour == 4), PDG_RC)):
        sigma = np.sqrt(pdg_value * (1 - pdg_value) / len(flavour))  # binomial
        assert abs(rate - pdg_value) < 4 * sigma
    for event in ee_z_lep_convention[:50]:
        check_record(event)
        assert event.info["facility"] == "LEP"
        assert event.info["sqrt_s"] == pytest.approx(91.2)
        assert (event.info["beam1_pdg"], event.info["beam2_pdg"]) == (11, -11)


def test_long_lived_particles_left_to_the_simulation(ee_z_lep_convention):
    """By default K0S and Lambda (c*tau > 1 cm) are final; long_lived_decays decays them."""
    default_final = np.concatenate([np.abs(e.pdg[e.final]) for e in generate("ee_z", 200, 5)])
    assert {310, 3122} <= set(default_final)
    lep_final = np.concatenate([np.abs(e.pdg[e.final]) for e in ee_z_lep_convention[:200]])
    assert not {310, 3122} & set(lep_final)
    assert {211, 321, 2212, 130} <= set(lep_final)  # c*tau > 1 m: never decayed


def test_vertices_and_primary_flag(check_record):
    """Weak-decay products sit at displaced vertices (cm, ns); the rest at the origin."""
    events = list(generate("ee_z", 300, seed=3))
    for event in events:
        check_record(event)
    r = np.concatenate([np.sqrt(e.vx**2 + e.vy**2 + e.vz**2) for e in events])
    primary = np.concatenate([e.primary for e in events])
    assert 0 < np.count_nonzero(~primary) < 0.2 * len(primary)
    # Pi0 -> gamma gamma (c*tau0 = 25 nm) is the largest primary displacement; b and c
    # hadron decay lengths are O(mm) at LEP.
    assert np.percentile(r[primary], 99) < 1e-3
    assert 0.01 < np.median(r[~primary]) < 1.0


def test_ep_hera_dis_truth(check_record):
    events = list(generate("ep_hera", 300, seed=9))
    for event in events:
        check_record(event)
        info = event.info
        assert info["facility"] == "HERA"
        assert (info["beam1_pdg"], info["beam1_energy"]) == (2212, 920.0)
        assert (info["beam2_pdg"], info["beam2_energy"]) == (11, 27.5)
        q2, x, y = info["truth_q2"], info["truth_x"], info["truth_y"]
        assert q2 >= 10.0
        assert 0 < y <= 1
        assert 0 < x <= 1
        # Q2 = x y (s - m_p^2 - m_e^2); the masses are a 1e-5 effect at HERA.
        assert q2 == pytest.approx(x * y * info["sqrt_s"] ** 2, rel=1e-2)
        lepton = info["truth_scattered_lepton"]
        assert event.pdg[lepton] == 11
        assert event.final[lepton]


def test_ep_options_and_eic_beams():
    event = next(generate("ep_hera", 1, seed=4, q2_min=200.0, lepton_pdg=-11))
    assert event.info["truth_q2"] >= 200.0
    assert event.pdg[event.info["truth_scattered_lepton"]] == -11
    eic = list(generate("ep_eic", 20, seed=4))
    assert eic[0].info["facility"] == "EIC"
    assert eic[0].info["sqrt_s"] == pytest.approx(np.sqrt(4 * 275 * 18), rel=1e-4)
    assert all(e.info["truth_q2"] >= 10.0 for e in eic)


def test_ee_lep2_mixture():
    events = list(generate("ee_lep2", 300, seed=8))
    assert events[0].info["sqrt_s"] == pytest.approx(200.0)
    with_flavour = sum("truth_quark_flavour" in e.info for e in events)
    # q qbar is about 82% of the cross section; WW and ZZ events carry no single flavour.
    assert 0.6 * len(events) < with_flavour < len(events)


def test_pp200_default_record(check_record):
    events = list(generate("pp200", 20, seed=200))
    for event in events:
        check_record(event)
        assert event.info["generator"] == "Pythia"
        assert event.info["generator_version"] == "8.317"
        assert event.info["generator_tune"] == "Detroit 2021"
        assert (event.info["beam1_pdg"], event.info["beam2_pdg"]) == (2212, 2212)
        assert event.info["sqrt_s"] == pytest.approx(200.0)
        assert event.final.any()
        assert not event.final[:2].any()


@pytest.mark.slow
def test_auau200_one_event(check_record):
    start = time.perf_counter()
    event = next(generate("auau200", 1, seed=197))
    assert time.perf_counter() - start < 60
    check_record(event)
    assert event.info["beam1_pdg"] == event.info["beam2_pdg"] == 1000791970
    assert event.info["beam1_energy"] == pytest.approx(100.0)  # per nucleon
    assert event.info["sqrt_s"] == pytest.approx(200.0)
    assert event.final.any()


def _same(a: GeneratedEvent, b: GeneratedEvent) -> bool:
    arrays = ("pdg", "charge", "px", "py", "pz", "energy", "mass", "vx", "vy", "vz", "vt",
              "parent", "primary", "final")
    return a.info == b.info and all(np.array_equal(getattr(a, n), getattr(b, n))
                                    for n in arrays)


def test_same_seed_same_events_different_seed_different():
    first = list(generate("ep_hera", 5, seed=11))
    again = list(generate("ep_hera", 5, seed=11))
    other = list(generate("ep_hera", 5, seed=12))
    assert all(_same(a, b) for a, b in zip(first, again, strict=True))
    assert not any(_same(a, b) for a, b in zip(first, other, strict=True))
    assert first[0].info["generator_seed"] == 11
