"""Particle gun, beam spot, pileup overlay and option validation."""

import math

import numpy as np
import pytest

from npfm.physics import CONFIGS, config_options, generate, list_configs

MUON_MASS = 0.1056584  # GeV, PDG (Pythia 8.317 particle data: 0.10566)


def test_gun_ranges_and_species(check_record):
    events = list(generate("gun", 400, seed=1, pdg=-13, p_range=(1.0, 2.0),
                           eta_range=(-0.5, 0.5), phi_range=(0.0, 1.0), count=5,
                           vertex=(0.1, -0.2, 3.0), facility="RHIC"))
    for event in events:
        check_record(event)
        assert len(event) == 5
        assert event.final.all()
        assert event.primary.all()
    pdg = np.concatenate([e.pdg for e in events])
    charge = np.concatenate([e.charge for e in events])
    assert set(pdg) == {-13}
    assert set(charge) == {1.0}
    px, py, pz, energy = (np.concatenate([getattr(e, k) for e in events])
                          for k in ("px", "py", "pz", "energy"))
    p = np.sqrt(px**2 + py**2 + pz**2)
    assert p.min() >= 1.0
    assert p.max() <= 2.0
    eta = np.arctanh(pz / p)
    assert eta.min() >= -0.5
    assert eta.max() <= 0.5
    phi = np.arctan2(py, px)
    assert phi.min() >= 0.0
    assert phi.max() <= 1.0
    np.testing.assert_allclose(energy**2 - p**2, MUON_MASS**2, rtol=1e-3)
    assert events[0].info["facility"] == "RHIC"
    assert (events[0].vx[0], events[0].vy[0], events[0].vz[0]) == (0.1, -0.2, 3.0)


def test_gun_theta_range_is_isotropic():
    events = list(generate("gun", 4000, seed=2, theta_range=(0.5, 1.0)))
    cos_theta = np.array([e.pz[0] / np.sqrt(e.px[0]**2 + e.py[0]**2 + e.pz[0]**2)
                          for e in events])
    theta = np.arccos(cos_theta)
    assert theta.min() >= 0.5
    assert theta.max() <= 1.0
    lo, hi = math.cos(1.0), math.cos(0.5)
    # Uniform in cos(theta): mean (lo + hi) / 2, standard error (hi - lo) / sqrt(12 N).
    assert abs(cos_theta.mean() - (lo + hi) / 2) < 4 * (hi - lo) / math.sqrt(12 * len(events))


def test_gun_defaults():
    event = next(generate("gun", 1, seed=3))
    assert event.pdg[0] == 211
    assert "facility" not in event.info
    p = math.sqrt(event.px[0]**2 + event.py[0]**2 + event.pz[0]**2)
    assert 0.5 <= p <= 5.0
    assert abs(math.atanh(event.pz[0] / p)) <= 1.0


def test_pileup_count_is_poisson():
    mean, n = 3.0, 2000
    # One-particle gun events as both trigger and pileup: extra particles = extra collisions.
    extra = np.array([len(e) - 1 for e in generate("gun", n, seed=4, pileup_mean=mean,
                                                    pileup_config="gun")])
    # Poisson: the mean of n counts has standard error sqrt(mean / n) = 0.039; allow 4 sigma.
    assert abs(extra.mean() - mean) < 4 * math.sqrt(mean / n)
    assert extra.var(ddof=1) == pytest.approx(mean, rel=0.15)  # var/mean = 1 (Poisson)


def test_pileup_overlay_of_pythia_collisions():
    plain = list(generate("ee_z", 5, seed=6))
    piled = list(generate("ee_z", 5, seed=6, pileup_mean=2.0, pileup_config="ep_hera"))
    assert sum(len(b) > len(a) for a, b in zip(plain, piled, strict=True)) >= 3
    for a, b in zip(plain, piled, strict=True):
        n = len(a)
        np.testing.assert_array_equal(b.pdg[:n], a.pdg)
        np.testing.assert_array_equal(b.parent[:n], a.parent)
        assert b.info == a.info  # info describes the triggered collision
        tail = b.parent[n:]
        assert np.all((tail == -1) | (tail >= n))
        # Each ep collision starts with its two beams (p, e-), which have no parent.
        starts = np.flatnonzero((b.pdg[n:] == 2212) & (tail == -1))
        np.testing.assert_array_equal(b.pdg[n:][starts + 1], 11)
        assert np.all(b.primary[n:][starts])


def test_beam_spot_spread():
    sigma = {"vertex_sigma_x": 0.01, "vertex_sigma_y": 0.02, "vertex_sigma_z": 5.0,
             "vertex_sigma_t": 0.3}
    events = list(generate("gun", 3000, seed=7, vertex=(0.0, 0.0, 1.0), **sigma))
    vx, vy, vz, vt = (np.array([getattr(e, k)[0] for e in events])
                      for k in ("vx", "vy", "vz", "vt"))
    np.testing.assert_array_equal(vz, [e.info["vertex_z"] for e in events])
    # Sample standard deviation: relative standard error 1/sqrt(2 N) = 1.3%; allow 4 sigma.
    tol = 4 / math.sqrt(2 * len(events))
    for values, key, centre in ((vx, "x", 0), (vy, "y", 0), (vz, "z", 1.0), (vt, "t", 0)):
        s = sigma[f"vertex_sigma_{key}"]
        assert values.std(ddof=1) == pytest.approx(s, rel=tol)
        assert abs(values.mean() - centre) < 4 * s / math.sqrt(len(events))


def test_beam_spot_shifts_whole_collision():
    plain = next(generate("ee_z", 1, seed=8))
    smeared = next(generate("ee_z", 1, seed=8, vertex_sigma_x=0.1, vertex_sigma_y=0.1,
                            vertex_sigma_z=10.0, vertex_sigma_t=1.0))
    shift = [smeared.info[f"vertex_{k}"] for k in "xyz"]
    assert all(s != 0 for s in shift)
    np.testing.assert_allclose(smeared.vx - shift[0], plain.vx, atol=1e-12)
    np.testing.assert_allclose(smeared.vz - shift[2], plain.vz, atol=1e-12)
    dt = smeared.vt - plain.vt
    np.testing.assert_allclose(dt, dt[0], atol=1e-12)


def test_seeded_overlay_is_deterministic():
    opts = {"pileup_mean": 1.5, "pileup_config": "gun", "vertex_sigma_z": 2.0, "count": 3}
    a, b = (list(generate("gun", 20, seed=9, **opts)) for _ in range(2))
    c = list(generate("gun", 20, seed=10, **opts))
    assert all(np.array_equal(x.pz, y.pz) and x.info == y.info for x, y in zip(a, b, strict=True))
    assert not np.array_equal(np.concatenate([x.pz for x in a]),
                              np.concatenate([x.pz for x in c]))


def test_registry():
    assert set(list_configs()) == {"pp200", "ee_z", "ee_lep2", "ep_hera", "ep_eic", "auau200",
                                   "pbpb5020", "clas12_ep", "clas12_ed", "gun"} == set(CONFIGS)
    assert config_options("ep_hera")["q2_min"] == 10.0
    assert config_options("pp200")["tune"] == "detroit"
    assert config_options("pbpb5020")["b_max_fm"] == 0.0


@pytest.mark.parametrize(("name", "options", "message"), [
    ("nope", {}, "unknown configuration 'nope'; valid: .*'ee_z'"),
    ("ee_z", {"q2_min": 5.0}, r"unknown option\(s\) \['q2_min'\].*valid: .*long_lived_decays"),
    ("ep_hera", {"q2_min": -1.0}, "q2_min"),
    ("ep_hera", {"lepton_pdg": 13}, "lepton_pdg"),
    ("pp200", {"tune": "perugia"}, "tune must be one of"),
    ("ee_z", {"long_lived_decays": 1}, "long_lived_decays"),
    ("ee_z", {"vertex_sigma_z": -1.0}, "vertex_sigma_z"),
    ("ee_z", {"pileup_config": "nope"}, "pileup_config"),
    ("gun", {"pdg": 999_999}, "pdg"),
    ("gun", {"eta_range": (-1, 1), "theta_range": (0, 1)}, "exclude each other"),
    ("gun", {"p_range": (2.0, 1.0)}, "p_range"),
    ("gun", {"vertex": (0, 0)}, "vertex"),
    ("gun", {"count": 0}, "count"),
])
def test_invalid_options_raise_at_call(name, options, message):
    with pytest.raises(ValueError, match=message):
        generate(name, 1, 1, **options)


@pytest.mark.parametrize("seed", [0, -5, 900_000_001, 1.5])
def test_invalid_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        generate("ee_z", 1, seed)
