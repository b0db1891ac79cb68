"""Physics of the fast simulation: hit counts, helix geometry, loopers, endcaps, multiple
scattering (Highland), energy loss and dE/dx, helix and material formulas."""

from __future__ import annotations

import numpy as np
import pytest
from detector_events import make_event

from npfm.detectors import load_geometry, simulate
from npfm.detectors.geometry import parse_geometry
from npfm.detectors.helix import GEV_PER_T_CM, advance, curvature, cylinder_crossing, perigee
from npfm.detectors.material import bethe_mean, highland, landau, moyal, scatter

#: Switches for an ideal detector: no material effects, resolution, inefficiency or noise.
IDEAL = {"multiple_scattering": False, "energy_loss": False, "smearing": False,
         "efficiency": False, "noise": False}


def _counts(out: dict, geometry: str) -> dict[str, int]:
    names = load_geometry(geometry).subsystems
    return {s: int(np.sum(out["hit_subsystem"] == s)) for s in names}


def test_central_track_hits_every_layer_once() -> None:
    out = simulate(make_event(211, 10.0, 0.0, 0.7), "sphenix", np.random.default_rng(1),
                   efficiency=False, noise=False)
    assert _counts(out, "sphenix") == {"MVTX": 3, "INTT": 4, "TPC": 48}
    assert out["particle_nhits"].tolist() == [[3, 4, 48]]
    tpc = out["hit_subsystem"] == "TPC"
    assert sorted(out["hit_cell_row"][tpc]) == list(range(48))  # pad row = TPC layer


def test_nominal_efficiency_on_average() -> None:
    n = 400
    rng = np.random.default_rng(2)
    out = simulate(make_event(211, 10.0, 0.0, rng.uniform(-np.pi, np.pi, n)), "sphenix", rng,
                   noise=False)
    lay = load_geometry("sphenix").layers
    for s, name in enumerate(("MVTX", "INTT", "TPC")):
        eff = lay.efficiency[lay.subsystem == s]
        expected = n * eff.sum()
        sigma = np.sqrt(n * np.sum(eff * (1 - eff)))
        assert abs(np.sum(out["hit_subsystem"] == name) - expected) < 4 * sigma


def _circle_radius(x: np.ndarray, y: np.ndarray) -> float:
    """Algebraic (Kasa) least-squares circle fit."""
    a = np.column_stack((x, y, np.ones_like(x)))
    d, e, f = np.linalg.lstsq(a, -(x * x + y * y), rcond=None)[0]
    return float(np.sqrt(d * d / 4 + e * e / 4 - f))


@pytest.mark.parametrize(("pt", "eta"), [(0.5, 0.0), (1.0, 0.6), (3.0, -0.9)])
def test_curvature_radius(pt: float, eta: float) -> None:
    out = simulate(make_event(-211, pt, eta, 1.0), "sphenix", np.random.default_rng(3), **IDEAL)
    tpc = out["hit_subsystem"] == "TPC"
    radius = _circle_radius(out["hit_x"][tpc].astype(float), out["hit_y"][tpc].astype(float))
    expected = pt / (0.3 * 1.4) * 100.0  # R[m] = pT / (0.3 B)
    assert abs(radius / expected - 1) < 0.01
    # the exact relation uses 0.299792458 GeV / (T m)
    assert radius == pytest.approx(pt / (GEV_PER_T_CM * 1.4), rel=2e-4)


def test_looper_recrosses_tpc_rows_and_stays_inside() -> None:
    out = simulate(make_event(211, 0.15, 0.0, 0.2), "sphenix", np.random.default_rng(4), **IDEAL)
    counts = _counts(out, "sphenix")
    assert counts["TPC"] > 48
    assert counts["MVTX"] > 3
    r = np.hypot(out["hit_x"], out["hit_y"])
    two_r = 2 * 0.15 / (GEV_PER_T_CM * 1.4)
    assert r.max() <= two_r + 1e-3
    assert np.abs(out["hit_z"]).max() <= 105.5
    # rows beyond 2R are never reached; those below are crossed on every turn
    tpc = load_geometry("sphenix").layers.radius[9:]
    assert counts["TPC"] >= 2 * 2 * np.sum(tpc < two_r)  # at least 2 turns, out and back


def test_max_turns_limits_loopers() -> None:
    rng = np.random.default_rng(5)
    few = simulate(make_event(211, 0.15, 0.0), "sphenix", rng, max_turns=1.0, **IDEAL)
    many = simulate(make_event(211, 0.15, 0.0), "sphenix", rng, max_turns=3.0, **IDEAL)
    assert len(many["hit_x"]) > 2 * len(few["hit_x"])


@pytest.mark.parametrize(("geometry", "eta", "subsystem", "first_disk"),
                         [("zeus", 2.0, "MVD", 3), ("epic", 2.3, "SVT", 5),
                          ("epic", -2.3, "SVT", 5)])
def test_forward_tracks_hit_endcap_disks(geometry: str, eta: float, subsystem: str,
                                         first_disk: int) -> None:
    out = simulate(make_event(211, 1.0, eta, 0.3), geometry, np.random.default_rng(6), **IDEAL)
    disk = (out["hit_subsystem"] == subsystem) & (out["hit_layer"] >= first_disk)
    assert disk.sum() >= 2
    geo = load_geometry(geometry)
    sub = geo.layers.subsystem == geo.subsystems.index(subsystem)
    planes = geo.layers.z[sub & geo.layers.is_disk]
    assert np.isclose(out["hit_z"][disk][:, None], planes).any(axis=1).all()
    assert np.all(np.sign(out["hit_z"][disk]) == np.sign(eta))


def _one_layer_geometry(x_over_x0: float) -> dict:
    """A scatterer at r = 10 cm and two massless measuring layers at 20 and 30 cm."""
    layer = {"subsystem": "MVTX", "shape": "cylinder", "half_length_cm": 100.0,
             "material": "si", "sensitive_thickness_cm": 0.005, "efficiency": 1.0,
             "noise_hits": 0.0, "resolution_um": {"rphi": 5.0, "z": 5.0},
             "readout": {"type": "pixel", "modules": 1, "pitch_rphi_um": 20.0,
                         "pitch_z_um": 20.0},
             "adc": {"bits": 1, "gev_per_count": 1.0}, "source": "pdg"}
    return {"id": "test", "version": "1", "experiment": "test", "facility": "test",
            "field_tesla": 1.4, "sources": [{"key": "pdg", "ref": "PDG"}],
            "materials": {"si": {"z_over_a": 0.49848, "density_g_cm3": 2.329,
                                 "mean_excitation_ev": 173.0, "x0_g_cm2": 21.82,
                                 "source": "pdg"}},
            "tracking": {"min_hits": 3, "pt_resolution": {"a_per_gev": 0, "b": 0, "c_gev": 0},
                         "d0_resolution_um": {"a": 1, "b_gev": 0},
                         "z0_resolution_um": {"a": 1, "b_gev": 0}, "source": "pdg"},
            "calorimetry": {"em": {"eta_max": 1, "stochastic": 0.1, "constant": 0,
                                   "source": "pdg"}},
            "layers": [{**layer, "radius_cm": 10.0, "x_over_x0": x_over_x0},
                       {**layer, "radius_cm": [20.0, 30.0], "x_over_x0": 0.0}]}


@pytest.mark.parametrize("linear_max_kink", [0.0, 3e-3])
def test_highland_kink_rms(linear_max_kink: float) -> None:
    """Kink angles measured from the hits behind one scatterer match theta0 (PDG 34.15),
    with exact stepping and with first-order kinks inside a step."""
    geo = parse_geometry(_one_layer_geometry(0.02), "test.yaml")
    n, p = 4000, 1.0
    phi = np.random.default_rng(0).uniform(-np.pi, np.pi, n)
    options = {**IDEAL, "linear_max_kink": linear_max_kink}
    kinked = simulate(make_event(211, p, 0.0, phi), geo, np.random.default_rng(7),
                      **{**options, "multiple_scattering": True})
    straight = simulate(make_event(211, p, 0.0, phi), geo, np.random.default_rng(7), **options)
    angles = []
    for out in (kinked, straight):
        order = np.lexsort((out["hit_layer"], out["hit_particle"]))
        x, y, z = (out[k][order].astype(float).reshape(n, 3) for k in ("hit_x", "hit_y", "hit_z"))
        chord = np.arctan2(y[:, 2] - y[:, 1], x[:, 2] - x[:, 1])
        angles.append((chord, (z[:, 2] - z[:, 1]) / np.hypot(x[:, 2] - x[:, 1],
                                                              y[:, 2] - y[:, 1])))
    beta = p / np.hypot(p, 0.13957039)
    theta0 = 13.6e-3 / (beta * p) * np.sqrt(0.02) * (1 + 0.038 * np.log(0.02 / beta ** 2))
    d_phi = (angles[0][0] - angles[1][0] + np.pi) % (2 * np.pi) - np.pi
    d_dip = np.arctan(angles[0][1]) - np.arctan(angles[1][1])
    for kink in (d_phi, d_dip):
        assert np.std(kink) / theta0 == pytest.approx(1.0, abs=0.05)


def test_highland_formula_and_scatter() -> None:
    # PDG eq. 34.15 for a 1 GeV muon through 1 % X0: 13.6/p sqrt(0.01) (1 + 0.038 ln(0.01/b2))
    p, m = np.array([1.0]), np.array([0.1056583755])
    b2 = 1 / (1 + (m / p) ** 2)
    expected = 13.6e-3 / (np.sqrt(b2) * p) * 0.1 * (1 + 0.038 * np.log(0.01 / b2))
    assert highland(p, m, np.array([1.0]), np.array([0.01])) == pytest.approx(expected)
    assert highland(p, m, np.array([1.0]), np.array([0.0]))[0] == 0.0
    rng = np.random.default_rng(8)
    n = 40000
    px, py, pz = np.full(n, 0.6), np.full(n, 0.3), np.full(n, 0.5)
    theta0 = np.full(n, 2e-3)
    qx, qy, qz = scatter(px, py, pz, theta0, rng)
    assert np.sqrt(qx ** 2 + qy ** 2 + qz ** 2) == pytest.approx(np.sqrt(0.7), rel=1e-12)
    space = np.arccos(np.clip((px * qx + py * qy + pz * qz) / 0.7, -1, 1))
    # the space angle has <theta^2> = 2 theta0^2 (PDG section 34.3)
    assert np.sqrt(np.mean(space ** 2)) / (np.sqrt(2) * 2e-3) == pytest.approx(1, abs=0.02)


def test_bethe_and_landau_values() -> None:
    si = (0.49848, 173e-6)
    # minimum ionisation in silicon: 1.664 MeV cm2/g (PDG table); here delta = 0
    bg = np.geomspace(1, 10, 200)
    mip = bethe_mean(bg * 0.13957, np.full(200, 0.13957), np.ones(200), *si).min()
    assert mip == pytest.approx(1.664, rel=0.03)
    # 300 um silicon at beta gamma ~ 4: most probable loss ~ 80 keV (PDG fig. 34.8)
    mpv, xi = landau(np.array([4 * 0.13957]), np.array([0.13957]), np.ones(1), *si,
                     np.array([0.03 * 2.329]))
    beta2 = 16 / 17
    assert 70e-3 < mpv[0] < 90e-3
    assert xi[0] == pytest.approx(0.5 * 0.307075 * 0.49848 * 0.03 * 2.329 / beta2)
    lam = moyal(np.random.default_rng(9), 200000)
    hist, edges = np.histogram(lam, bins=np.linspace(-3, 8, 111))
    assert abs(edges[np.argmax(hist)]) < 0.2  # mode at 0
    assert np.mean(lam) == pytest.approx(np.euler_gamma + np.log(2), abs=0.02)


def test_cylinder_crossing_is_exact() -> None:
    rng = np.random.default_rng(10)
    n = 2000
    x, y = rng.uniform(-5, 5, (2, n))
    px, py = rng.normal(0, 1, (2, n))
    pz = rng.normal(0, 1, n)
    kappa = curvature(rng.choice([-1.0, 1.0], n), np.hypot(px, py), 1.5)
    radius = np.full(n, 30.0)
    s = cylinder_crossing(x, y, px, py, kappa, radius)
    reach = np.isfinite(s)
    assert 0.2 * n < reach.sum() < n  # some circles never reach r = 30 cm
    x, y, px, py, pz, kappa, s = (a[reach] for a in (x, y, px, py, pz, kappa, s))
    xs, ys, _, _, _ = advance(x, y, np.zeros_like(x), px, py, pz, kappa, s)
    assert np.hypot(xs, ys) == pytest.approx(30.0, abs=1e-9)
    # no earlier crossing: sample the path before s
    frac = np.linspace(0.0, 0.999, 200)[:, None]
    xb, yb, _, _, _ = advance(x, y, np.zeros_like(x), px, py, pz, kappa, s * frac)
    assert (np.hypot(xb, yb) < 30.0).all()
    # almost straight tracks (kappa -> 0) stay accurate
    s0 = cylinder_crossing(np.zeros(1), np.zeros(1), np.ones(1), np.zeros(1),
                           np.array([1e-12]), np.array([30.0]))
    assert s0[0] == pytest.approx(30.0, rel=1e-9)


def test_perigee_matches_brute_force() -> None:
    rng = np.random.default_rng(11)
    n = 50
    x, y, z = rng.uniform(-3, 3, (3, n))
    px, py, pz = rng.normal(0, 0.5, (3, n))
    kappa = curvature(rng.choice([-1.0, 1.0], n), np.hypot(px, py), 1.4)
    d0, z0 = perigee(x, y, z, px, py, pz, kappa)
    # closest approach within half a turn either way: a coarse scan, then a fine one
    cols = np.arange(n)
    grid = np.linspace(-1, 1, 4001)[:, None] * np.minimum(np.pi / np.abs(kappa), 60)
    for fine in (False, True):
        xs, ys, _, _, _ = advance(x, y, z, px, py, pz, kappa, grid)
        best = grid[np.argmin(np.hypot(xs, ys), axis=0), cols]
        grid = best + np.linspace(-0.1, 0.1, 2001)[:, None] * (not fine)
    xb, yb, zb, pxb, pyb = advance(x, y, z, px, py, pz, kappa, best)
    assert np.abs(d0) == pytest.approx(np.hypot(xb, yb), abs=1e-6)
    assert z0 == pytest.approx(zb, abs=5e-4)  # the scan step is 1e-4 cm
    assert (np.sign(d0) == np.sign(xb * pyb - yb * pxb)).all()  # sign of (r x p)_z


def test_dedx_bands_separate_pi_k_p() -> None:
    """Truncated-mean TPC dE/dx (lowest 70 % of the hits) at p = 0.4 GeV."""
    n = 150
    rng = np.random.default_rng(12)
    geo = load_geometry("sphenix")
    means = {}
    for pdg in (211, 321, 2212):
        out = simulate(make_event(pdg, 0.4, 0.0, rng.uniform(-np.pi, np.pi, n)), geo, rng,
                       noise=False)
        tpc = out["hit_subsystem"] == "TPC"
        dedx = out["hit_edep"][tpc] / geo.layers.thickness[9 + out["hit_layer"][tpc]]
        part = out["hit_particle"][tpc]
        means[pdg] = np.array([np.mean(np.sort(dedx[part == i])[:int(0.7 * np.sum(part == i))])
                               for i in range(n)])
    pi, k, p = (means[c] for c in (211, 321, 2212))
    assert np.median(k) / np.median(pi) > 1.8
    assert np.median(p) / np.median(k) > 1.8
    assert (np.mean(k) - np.mean(pi)) / np.std(pi) > 5
    assert (np.mean(p) - np.mean(k)) / np.std(k) > 5
    assert pi.max() < k.min()
    assert k.max() < p.min()


def test_energy_loss_lowers_momentum() -> None:
    rng = np.random.default_rng(13)
    out = simulate(make_event(2212, 0.4, 0.0), "sphenix", rng, efficiency=False, noise=False,
                   smearing=False, multiple_scattering=False)
    r = np.hypot(out["hit_x"], out["hit_y"])
    tpc = out["hit_subsystem"] == "TPC"
    # a slowing proton curls tighter: the local radius of curvature falls along the track
    inner = _circle_radius(out["hit_x"][tpc][r[tpc] < 45].astype(float),
                           out["hit_y"][tpc][r[tpc] < 45].astype(float))
    outer = _circle_radius(out["hit_x"][tpc][r[tpc] > 60].astype(float),
                           out["hit_y"][tpc][r[tpc] > 60].astype(float))
    assert outer < inner < 0.4 / (GEV_PER_T_CM * 1.4)
