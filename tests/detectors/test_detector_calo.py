"""Calorimeter fast simulation: cells, truth contributions, responses, geometry checks."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
import yaml
from detector_events import make_event

from npfm.detectors import load_geometry, simulate_events
from npfm.detectors.geometry import parse_geometry
from npfm.detectors.geometry_reader import GeometryError
from npfm.detectors.showers import containment, em_spots, gp_average
from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.physics.record import GeneratedEvent


def _run(events: list[GeneratedEvent], **options: object) -> list[dict]:
    rows = simulate_events(events, "sphenix", np.random.default_rng(5), **options)
    check_table(events_to_table(rows), "simulated")  # schema-2 checks, truth fractions
    return rows


def _sum(row: dict, subsystem: str | None = None) -> float:
    energy = row["cell_energy"]
    return float(energy.sum() if subsystem is None else
                 energy[row["cell_subsystem"] == subsystem].sum())


def test_sphenix_geometry_has_the_tdr_towers() -> None:
    calos = load_geometry("sphenix").calorimeters
    assert [(c.subsystem, c.n_eta, c.n_phi) for c in calos] == [
        ("CEMC", 96, 256), ("HCALIN", 24, 64), ("HCALOUT", 24, 64)]
    assert 2 * calos[0].eta_max / calos[0].n_eta == pytest.approx(0.024, abs=0.0015)  # ~0.024 [tdr]
    assert calos[0].depth("x0") == pytest.approx(18.0, abs=0.1)


def test_electron_showers_in_the_emcal_with_truth() -> None:
    rows = _run([make_event(11, 4.0, eta=0.2, phi=0.5) for _ in range(30)])
    sums = np.array([_sum(r, "CEMC") for r in rows])
    assert sums.mean() == pytest.approx(4.0, rel=0.05)  # ~2 % rear leakage
    row = rows[0]
    assert set(row["cell_subsystem"]) <= {"CEMC", "HCALIN", "HCALOUT"}
    assert (row["cell_truth_particle"] == 0).all()
    np.testing.assert_allclose(row["cell_truth_fraction"], 1.0)
    hottest = np.argmax(row["cell_energy"])
    eta = np.arcsinh(row["cell_z"][hottest] / np.hypot(row["cell_x"][hottest],
                                                         row["cell_y"][hottest]))
    assert eta == pytest.approx(0.2, abs=0.05)  # the shower axis is where the track points


def test_muons_leave_mips_and_pions_read_low_on_the_em_scale() -> None:
    muons = _run([make_event(13, 5.0) for _ in range(10)])
    mip = np.array([_sum(r, "CEMC") for r in muons])
    assert 0.05 < np.median(mip) < 0.25  # 18 X0 of W/SciFi at ~11 MeV/cm
    assert all(len(set(r["cell_subsystem"])) == 3 for r in muons)  # it crosses all three
    pions = _run([make_event(211, 10.0) for _ in range(40)])
    total = np.array([_sum(r) for r in pions])
    assert 0.6 < total.mean() / 10.0 < 0.95  # e/h > 1 and leakage beyond 5 lambda


def test_shared_cells_split_their_truth() -> None:
    rows = _run([make_event([22, 22], 3.0, eta=0.0, phi=[0.0, 0.012])])
    row = rows[0]
    shared = np.bincount(row["cell_truth_cell"]) == 2
    assert shared.any()
    sums = np.bincount(row["cell_truth_cell"], weights=row["cell_truth_fraction"])
    np.testing.assert_allclose(sums, 1.0, atol=1e-6)


def test_cells_can_be_turned_off_and_trackers_have_none() -> None:
    event = make_event(11, 2.0)
    assert _run([event], calorimeter=False)[0].get("cell_energy") is None
    rows = simulate_events([event], "aleph", np.random.default_rng(1))
    assert rows[0].get("cell_energy") is None


def test_sampled_profile_follows_grindhammer_peters() -> None:
    energy = np.full(200, 4.0)
    depth, _ = em_spots(energy, 7.97e-3, 74.0, 64, np.random.default_rng(2))
    alpha, beta = gp_average(energy[:1], 7.97e-3, 74.0)
    assert (depth < 18.0).mean() == pytest.approx(containment(alpha, beta, 18.0)[0], abs=0.01)
    assert depth.mean() == pytest.approx(alpha[0] / beta[0], rel=0.1)


def test_bad_calorimeter_entries_are_refused() -> None:
    raw = yaml.safe_load(files("npfm.detectors").joinpath("geometries/sphenix.yaml")
                         .read_text(encoding="utf-8"))
    raw["calorimeters"][1]["r_inner_cm"] = 100.0  # overlaps the EMCal
    with pytest.raises(GeometryError, match=r"calorimeters\[1\].r_outer_cm: radii must"):
        parse_geometry(raw, "x.yaml")
    raw["calorimeters"][1]["subsystem"] = "HCAL"
    with pytest.raises(GeometryError, match="unknown subsystem 'HCAL'"):
        parse_geometry(raw, "x.yaml")

