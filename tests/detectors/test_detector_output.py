"""Simulated events as event-model rows: schema validity, labels, decays in flight,
reconstructed objects, noise hits, determinism and batches."""

from __future__ import annotations

import time

import numpy as np
import pytest
from detector_events import make_event, mixed_event

from npfm.detectors import SimOptions, list_geometries, load_geometry, simulate, simulate_events
from npfm.events.build import events_to_table
from npfm.events.checks import check_schema, check_table
from npfm.events.labels import NOISE_PT_GEV, pid_class


def _valid(rows: list[dict]) -> None:
    table = events_to_table(rows, "simulated")
    check_schema(table.schema, "simulated")
    check_table(table, "simulated")


@pytest.mark.parametrize("name", ["aleph", "alice", "clas12", "delphi", "epic", "opal", "sphenix",
                                  "zeus"])
def test_every_geometry_gives_valid_events(name: str) -> None:
    assert name in list_geometries()
    rng = np.random.default_rng(20)
    out = simulate(mixed_event(rng, 30), name, rng, run=7, event_number=3)
    _valid([out])
    geo = load_geometry(name)
    assert out["experiment"] == geo.experiment
    assert out["geometry_id"] == name
    assert out["run"] == 7
    assert out["event"] == 3
    assert out["data_level"] == "simulated"
    assert out["magnetic_field"] == geo.field_tesla
    assert out["process"] == "test"
    assert out["subsystems"] == list(geo.subsystems)
    assert out["particle_nhits"].shape == (len(out["particle_pdg"]), len(geo.subsystems))
    real = out["hit_particle"] >= 0
    assert real.sum() > 50
    assert (~real).any()


def test_labels_are_consistent() -> None:
    rng = np.random.default_rng(21)
    out = simulate(mixed_event(rng, 80), "sphenix", rng)
    part, pdg = out["hit_particle"], out["particle_pdg"]
    noise = part < 0
    assert (out["hit_track_id"] == part).all()
    assert (out["hit_pid_class"][noise] == 0).all()
    assert out["hit_noise"][noise].all()
    real = ~noise
    assert (out["hit_pid_class"][real] == pid_class(pdg[part[real]])).all()
    pt = np.hypot(out["particle_px"], out["particle_py"])
    assert (out["hit_noise"][real] == (pt[part[real]] < NOISE_PT_GEV)).all()
    assert out["hit_noise"][real].any()  # the event has particles below 0.06 GeV with hits
    # per-subsystem hit counts match the hit lists
    subsystem = np.array([out["subsystems"].index(s) for s in out["hit_subsystem"][real]])
    counts = np.zeros_like(out["particle_nhits"])
    np.add.at(counts, (part[real], subsystem), 1)
    assert (counts == out["particle_nhits"]).all()
    # neutral particles leave no hits
    assert (out["particle_nhits"][out["particle_charge"] == 0] == 0).all()


def test_hit_cells_and_times() -> None:
    rng = np.random.default_rng(22)
    out = simulate(make_event(211, 1.0, 0.5, 0.4), "sphenix", rng, efficiency=False, noise=False)
    mvtx, intt, tpc = (out["hit_subsystem"] == s for s in ("MVTX", "INTT", "TPC"))
    assert (out["hit_adc"][mvtx] == 1).all()  # binary pixels
    assert ((out["hit_adc"][intt] >= 1) & (out["hit_adc"][intt] <= 7)).all()  # 3-bit ADC
    assert (out["hit_cell_row"][mvtx] < 512).all()
    assert (out["hit_cell_col"][mvtx] >= 0).all()
    # strip z is the centre of a 1.6 cm strip-length bin
    z_bin = (out["hit_z"][intt] + 22.8) / 1.6 - 0.5
    assert z_bin == pytest.approx(np.round(z_bin), abs=1e-6)
    # TPC hit time is the drift time from the hit to the end cap at 8 cm/us (+ flight)
    flight = out["hit_t"][tpc] - (105.5 - np.abs(out["hit_z"][tpc])) / 8e-3
    assert np.all((flight > 1) & (flight < 5))  # 31-76 cm at ~c
    assert (out["hit_t"][mvtx] > 0).all()
    assert (out["hit_t"][mvtx] < 1).all()
    assert (out["hit_module"][tpc] < 12).all()  # z > 0 side
    assert (out["hit_edep"] > 0).all()
    # pixel cells hold the measured position: row along r-phi (26.88 um), col along z
    col_z = -13.5 + (out["hit_cell_col"][mvtx] + 0.5) * 29.24e-4
    assert out["hit_z"][mvtx] == pytest.approx(col_z, abs=29.24e-4 / 2 + 1e-6)


def test_noise_hits() -> None:
    rng = np.random.default_rng(23)
    rows = simulate_events([make_event(211, 1.0)] * 200, "sphenix", rng)
    noise = np.concatenate([r["hit_particle"] for r in rows]) < 0
    lay = load_geometry("sphenix").layers
    expected = 200 * lay.noise_hits.sum()
    assert abs(noise.sum() - expected) < 5 * np.sqrt(expected)
    quiet = simulate(make_event(211, 1.0), "sphenix", rng, noise=False)
    assert (quiet["hit_particle"] >= 0).all()


def test_decays_in_flight() -> None:
    rng = np.random.default_rng(24)
    n = 400
    event = make_event(np.where(np.arange(n) % 2 == 0, 310, 3122), 1.0, 0.0,
                       rng.uniform(-np.pi, np.pi, n))
    out = simulate(event, "sphenix", rng, noise=False)
    _valid([out])
    parent, pdg = out["particle_parent"], out["particle_pdg"]
    assert (parent[:n] == -1).all()
    assert (parent[n:] >= 0).all()
    daughters = np.flatnonzero(parent >= 0)
    k0 = daughters[pdg[parent[daughters]] == 310]
    lam = daughters[pdg[parent[daughters]] == 3122]
    assert set(pdg[k0]) == {211, -211, 111}
    assert set(pdg[lam]) == {2212, -211, 2112, 111}
    photons = daughters[pdg[daughters] == 22]
    assert (pdg[parent[photons]] == 111).all()
    # momentum is conserved and daughters start at their parent's decay vertex
    for mother in np.unique(parent[daughters]):
        kids = np.flatnonzero(parent == mother)
        for comp in ("particle_px", "particle_py", "particle_pz"):
            assert out[comp][kids].sum() == pytest.approx(out[comp][mother], abs=1e-9)
        assert np.ptp(out["particle_vx"][kids]) == 0
        assert (out["particle_vt"][kids] > 0).all()
    # decay lengths follow c tau beta gamma (K0S: 2.6844 cm, beta gamma = p / m)
    first = {m: np.flatnonzero(parent == m)[0] for m in np.unique(parent[k0])}
    length = np.array([np.hypot(out["particle_vx"][d], out["particle_vy"][d])
                       for d in first.values()])
    assert np.mean(length) == pytest.approx(2.6844 * 1.0 / 0.497611, rel=0.15)
    charged = daughters[out["particle_charge"][daughters] != 0]
    assert out["particle_nhits"][charged].sum() > 10 * len(charged)
    assert not out["particle_primary"][n:].any()
    off = simulate(event, "sphenix", rng, decays=False, noise=False)
    assert len(off["particle_pdg"]) == n
    assert len(off["hit_x"]) == 0


def test_objects() -> None:
    rng = np.random.default_rng(25)
    pdg = [211, -11, 13, 22, 2112, 12, 321, 211]
    event = make_event(pdg, [2.0, 1.0, 3.0, 5.0, 4.0, 1.0, 0.8, 0.5],
                       [0, 0.3, -0.4, 0.2, 0.1, 0, 0, 3])
    exact = simulate(event, "aleph", rng, smearing=False, noise=False, efficiency=False)
    _valid([exact])
    # the pi at eta = 3 misses the tracker; the neutrino leaves nothing
    assert exact["object_type"].tolist() == ["charged_track", "electron", "muon", "photon",
                                             "neutral_hadron", "charged_track"]
    tracks = np.array([0, 1, 2, 6])
    assert exact["object_px"][[0, 1, 2, 5]] == pytest.approx(exact["particle_px"][tracks])
    assert exact["object_nhits"][[0, 1, 2, 5]].tolist() == \
        exact["particle_nhits"][tracks].tolist()
    assert exact["object_d0"][3] is None
    assert abs(exact["object_d0"][0]) < 1e-9
    assert exact["object_mass"][[0, 1, 2, 3]] == pytest.approx([0.13957039, 0.000511, 0.10566, 0],
                                                              abs=1e-5)
    # with smearing the track pT spread follows a pT (+) b
    many = make_event(211, 10.0, 0.0, rng.uniform(-np.pi, np.pi, 2000))
    out = simulate(many, "aleph", rng, noise=False)
    pt = np.hypot(out["object_px"], out["object_py"])
    res = load_geometry("aleph").resolution
    assert np.std(pt / 10.0 - 1) == pytest.approx(np.hypot(res.pt_a * 10, res.pt_b), rel=0.1)
    d0 = np.array(out["object_d0"], dtype=float)
    assert np.std(d0) == pytest.approx(np.hypot(res.d0_a, res.d0_b / 10), rel=0.15)


def test_displaced_track_impact_parameter() -> None:
    out = simulate(make_event(211, 5.0, 0.0, 0.0, vertex=(0.0, 0.3, 2.0)), "aleph",
                   np.random.default_rng(26), smearing=False, noise=False)
    # a track along +x from y = 0.3 cm: |d0| = 0.3, sign of (r x p)_z < 0, z0 = 2
    assert out["object_d0"][0] == pytest.approx(-0.3, abs=1e-3)
    assert out["object_z0"][0] == pytest.approx(2.0, abs=1e-6)


def test_deterministic_and_batched() -> None:
    events = [mixed_event(np.random.default_rng(s), 20) for s in range(3)]
    a = simulate(events[0], "sphenix", np.random.default_rng(5))
    b = simulate(events[0], "sphenix", np.random.default_rng(5))
    for key in a:
        assert np.array_equal(np.asarray(a[key]), np.asarray(b[key]))
    rows = simulate_events(events, "sphenix", np.random.default_rng(6), run=2, first_event=10)
    _valid(rows)
    assert [r["event"] for r in rows] == [10, 11, 12]
    for row, event in zip(rows, events, strict=True):
        assert len(row["particle_pdg"]) >= len(event)
        assert (row["particle_pdg"][:len(event)] == event.pdg).all()
    assert simulate_events([], "sphenix", np.random.default_rng(0)) == []
    with pytest.raises(TypeError):
        simulate(events[0], "sphenix", np.random.default_rng(0), colour="red")
    assert SimOptions().max_turns == 3.0


def test_without_objects() -> None:
    out = simulate(make_event(211, 1.0), "sphenix", np.random.default_rng(27),
                   include_objects=False)
    assert not any(key.startswith("object_") for key in out)
    _valid([out])


@pytest.mark.parametrize("name", ["sphenix", "aleph"])
def test_fifty_particle_event_time(name: str) -> None:
    """Performance sanity: time ~50-particle events (printed, see ``pytest -rP``; timing
    is not asserted)."""
    rng = np.random.default_rng(28)
    events = [mixed_event(rng, 50) for _ in range(5)]
    geo = load_geometry(name)
    simulate(events[0], geo, rng)  # warm-up
    start = time.perf_counter()
    rows = [simulate(event, geo, rng) for event in events]
    print(f"{name}: {1e3 * (time.perf_counter() - start) / len(events):.1f} ms per event")
    _valid(rows)
