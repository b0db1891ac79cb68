"""CLAS12: the geometry file, the hard-edged solenoid, fixed-target DIS (e+p, e+d), a
simulated corpus that validates (with polarisations in its provenance) and its checks."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import yaml

from npfm.detectors import GeometryError, load_geometry, simulate_events
from npfm.detectors.field import RESIDUAL_TESLA, field_along
from npfm.detectors.geometry import parse_geometry
from npfm.detectors.production import SimulationJob, run_job
from npfm.detectors.validation import EXACT
from npfm.detectors.validation_clas12 import clas12_checks
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.physics import generate


def test_geometry_figures() -> None:
    geo = load_geometry("clas12")
    lay = geo.layers
    assert geo.subsystems == ("BST", "BMT", "FMT", "DC")
    assert geo.field_tesla == 5.0
    assert geo.field_half_length == 50.0
    counts = [int(np.sum(lay.subsystem == s)) for s in range(4)]
    assert counts == [6, 6, 6, 36]  # DC: 3 regions x 2 superlayers x 6 layers
    bmt = lay.subsystem == 1
    assert lay.radius[bmt] == pytest.approx(14.5731 + 1.5 * np.arange(6))
    boundary = lay.is_disk & (lay.subsystem == -1)
    assert sorted(lay.z[boundary]) == [-50.0, 50.0]
    assert (lay.x_over_x0[boundary] == 0).all()


def test_field_along() -> None:
    z = np.array([0.0, 49.0, 50.0, 50.0, 80.0, -50.0])
    pz = np.array([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    assert field_along(5.0, 50.0, z, pz) == pytest.approx(
        [5.0, 5.0, RESIDUAL_TESLA, 5.0, RESIDUAL_TESLA, RESIDUAL_TESLA])
    assert (field_along(1.4, np.inf, z, pz) == 1.4).all()


def test_field_half_length_must_be_positive() -> None:
    raw = yaml.safe_load(files("npfm.detectors").joinpath("geometries/clas12.yaml").read_text())
    raw["field_half_length_cm"] = -1.0
    with pytest.raises(GeometryError, match="field_half_length_cm"):
        parse_geometry(raw, "clas12.yaml")


def test_helix_inside_straight_beyond() -> None:
    """A 1 GeV central pion curls with R = pT / (0.3 B) in the BST/BMT; a forward electron
    runs straight through the 36 DC layers."""
    geo = load_geometry("clas12")
    gun = list(generate("gun", 2, seed=3, pdg=211, p_range=(1.0, 1.0),
                        theta_range=(1.5, 1.6), facility="CEBAF"))
    central = simulate_events(gun, geo, np.random.default_rng(1), **EXACT)[0]
    x, y = (np.asarray(central[k], np.float64) for k in ("hit_x", "hit_y"))
    assert list(central["hit_subsystem"]) == ["BST"] * 6 + ["BMT"] * 6
    a = np.column_stack([x, y, np.ones_like(x)])
    d, e, f = np.linalg.lstsq(a, -(x ** 2 + y ** 2), rcond=None)[0]
    pt = float(np.hypot(gun[0].px[0], gun[0].py[0]))
    assert np.sqrt(d * d / 4 + e * e / 4 - f) == pytest.approx(pt / (0.299792458 * 5) * 100,
                                                               rel=1e-3)
    forward = list(generate("gun", 1, seed=4, pdg=11, p_range=(4.0, 4.0),
                            theta_range=(0.3, 0.3), facility="CEBAF"))
    ev = simulate_events(forward, geo, np.random.default_rng(1), **EXACT)[0]
    dc = np.asarray(ev["hit_subsystem"]) == "DC"
    assert dc.sum() == 36
    pts = np.column_stack([np.asarray(ev[k], np.float64)[dc] for k in ("hit_x", "hit_y",
                                                                        "hit_z")])
    centred = pts - pts.mean(axis=0)
    direction = np.linalg.svd(centred)[2][0]
    assert np.abs(centred - np.outer(centred @ direction, direction)).max() < 1e-4


def test_fixed_target_ep() -> None:
    events = list(generate("clas12_ep", 20, seed=5))
    info = events[0].info
    assert (info["beam1_pdg"], info["beam1_energy"]) == (11, 10.6)
    assert (info["beam2_pdg"], info["beam2_energy"]) == (2212, 0.93827)  # at rest
    assert info["sqrt_s"] == pytest.approx(np.sqrt(0.93827 ** 2 + 2 * 10.6 * 0.93827), 1e-4)
    assert info["facility"] == "CEBAF"
    for ev in events:
        q2, x = ev.info["truth_q2"], ev.info["truth_x"]
        assert q2 > 1.0
        assert 0.93827 ** 2 + q2 * (1 / x - 1) > 4.0
        assert -5.5 <= ev.info["vertex_z"] <= -0.5
        assert ev.vz[ev.primary] == pytest.approx(ev.info["vertex_z"], abs=1e-3)  # prompt decays


def test_fixed_target_ed_mix() -> None:
    events = list(generate("clas12_ed", 60, seed=6))
    struck = {int(ev.pdg[1]) for ev in events}
    assert struck == {2212, 2112}
    assert {ev.info["beam2_pdg"] for ev in events} == {1000010020}
    assert events[0].info["beam2_energy"] == pytest.approx(1.875613 / 2, abs=1e-5)


@pytest.mark.parametrize(("options", "message"), [
    ({"beam_polarisation": 1.5}, "beam_polarisation must be a number in \\[-1, 1\\]"),
    ({"w_min": -1}, "w_min"), ({"target_length_cm": "5"}, "target_length_cm")])
def test_fixed_target_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate("clas12_ep", 1, seed=1, **options)


def test_job_refuses_bad_option_values() -> None:
    with pytest.raises(NpfmError, match="beam_polarisation must be a number in"):
        SimulationJob("clas12", "clas12_ep", 10, physics_options={"beam_polarisation": 2})


def test_corpus_validates_with_polarisations(tmp_path: Path) -> None:
    job = SimulationJob("clas12", "clas12_ep", 20, seed=2, shard_events=10,
                        physics_options={"beam_polarisation": 0.85})
    manifest = run_job(job, tmp_path / "c12")
    assert manifest["events"] == 20
    assert manifest["hits"] > 20 * 50
    corpus = Corpus.open(tmp_path / "c12")
    assert corpus.validate()["events"] == 20
    prov = (tmp_path / "c12" / "prov.json").read_text()
    options = json.loads(next(v for k, v in _items(json.loads(prov)) if k == "npfm:config"))
    assert options["physics_options"][0]["beam_polarisation"] == 0.85
    assert options["physics_options"][0]["target_polarisation"] is None


def _items(node: object) -> list[tuple[str, str]]:
    """All (key, value) pairs of a nested JSON document."""
    if isinstance(node, dict):
        return [*node.items(), *(i for v in node.values() for i in _items(v))]
    if isinstance(node, list):
        return [i for v in node for i in _items(v)]
    return []


def test_clas12_physics_checks() -> None:
    checks, arrays = clas12_checks(30, seed=3)
    assert [c.name for c in checks] == ["clas12_dis", "clas12_dc"]
    assert all(c.passed for c in checks), [c.detail for c in checks]
    assert len(arrays["q2"]) == 30
