"""ePIC Barrel Imaging Calorimeter: geometry, imaging-layer hits, two-ended photo-statistics
and waveforms (consistent with the cell energies), a corpus that validates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import gamma

from npfm import detectors
from npfm.detectors import validation_bic
from npfm.detectors.geometry import load_geometry
from npfm.detectors.geometry_reader import GeometryError
from npfm.detectors.showers import gp_average
from npfm.detectors.simulation import simulate_events
from npfm.detectors.validation import _gun
from npfm.detectors.waveforms import photostatistics, two_end_energy, waveform_energy
from npfm.events.build import events_to_table
from npfm.events.writer import write_indexed_shard

SCFI, IMAGING = "EcalBarrelScFi", "EcalBarrelImaging"


@pytest.fixture(scope="module")
def electrons() -> list[dict]:
    events = _gun(40, 3, pdg=11, p_range=(4.0, 4.0), eta_range=(-0.3, 0.3))
    return simulate_events(events, "epic", np.random.default_rng(3), include_objects=False)


def test_geometry_layers_interleave() -> None:
    geo = load_geometry("epic")
    scfi = [c for c in geo.calorimeters if c.subsystem == SCFI]
    assert len(scfi) == 12
    assert IMAGING in geo.subsystems
    depth = sum(c.depth("x0") for c in scfi)
    assert 17.0 < depth < 18.0  # ~17.1 X0 in the ePIC geometry
    r = geo.imaging[0].radius
    assert len(r) == 6
    assert geo.hit_extent == (r[-1], 258.75)  # curation's envelope covers the imaging hits
    for k in range(5):  # imaging layer k lies in front of Pb/ScFi layer k, behind k - 1
        assert (k == 0 or scfi[k - 1].r_outer < r[k])
        assert r[k] < scfi[k].r_inner


@pytest.mark.parametrize(("section", "key", "value", "where"), [
    ("calorimeters", "pulse_rise_ns", 30.0, r"calorimeters\[0\]\.waveforms\.pulse_rise_ns"),
    ("calorimeters", "fibre_ends_z_cm", [1.0, -1.0],
     r"calorimeters\[0\]\.waveforms\.fibre_ends_z_cm"),
    ("imaging_layers", "z_max_cm", -300.0, r"imaging_layers\[0\]\.z_max_cm"),
    ("imaging_layers", "subsystem", "BIC", r"imaging_layers\[0\]\.subsystem"),
])
def test_bad_bic_entries_are_refused(tmp_path: Path, section: str, key: str, value: object,
                                     where: str) -> None:
    raw = yaml.safe_load((Path(detectors.__file__).parent / "geometries" / "epic.yaml")
                         .read_text())
    entry = raw[section][0]
    (entry["waveforms"] if section == "calorimeters" else entry)[key] = value
    bad = tmp_path / "bad.yaml"
    raw["id"] = "bad"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(GeometryError, match=where):
        load_geometry(str(bad))


def test_two_end_photostatistics_unbiased_and_encode_z() -> None:
    geo = load_geometry("epic")
    calos = geo.calorimeters
    fibre = calos[0].waveform
    assert fibre is not None
    n = 4000
    z = np.linspace(fibre.z_end0 + 10, fibre.z_end1 - 10, n)
    calo = np.zeros(n, np.int64)
    energy, counts = photostatistics(np.full(n, 0.5), z, calo, calos,
                                     np.random.default_rng(0))
    assert abs(energy.mean() / 0.5 - 1) < 0.003  # the geometric mean does not depend on z
    # photo-statistics: relative variance (1/N0 + 1/N1) / 4 of the geometric mean
    sigma = 0.5 * np.sqrt(1 / counts[:, 0] + 1 / counts[:, 1]) / 2
    pulls = (energy - 0.5) / sigma
    assert 0.9 < pulls.std() < 1.1
    z_rec = 0.5 * (fibre.z_end0 + fibre.z_end1 - fibre.attenuation
                   * np.log(counts[:, 0] / counts[:, 1]))
    assert np.corrcoef(z, z_rec)[0, 1] > 0.99
    assert np.abs(z_rec - z).mean() < 30.0  # cm, from 0.5 GeV alone


def test_waveforms_reconstruct_the_cell_energy(electrons: list[dict]) -> None:
    geo = load_geometry("epic")
    fibre = geo.calorimeters[0].waveform
    assert fibre is not None
    diffs, sigmas = [], []
    for r in electrons:
        assert len(r["waveform_cell"]) == 2 * len(r["cell_energy"])
        assert list(r["waveform_end"][:4]) == [0, 1, 0, 1]
        pe = waveform_energy(r["sample_adc"], r["waveform_n_samples"], r["waveform_pedestal"],
                             r["waveform_gain"]).reshape(-1, 2)
        e_wave = two_end_energy(np.maximum(pe, 0.0), geo.calorimeters,
                                np.zeros(len(pe), np.int64))
        cell = r["cell_energy"][r["waveform_cell"][::2]]
        # electronic noise and rounding per waveform, in photo-electrons
        noise = np.sqrt(fibre.n_samples * (fibre.noise ** 2 + 1 / 12)) / fibre.gain
        rel = 0.5 * np.hypot(noise / np.maximum(pe[:, 0], 1), noise / np.maximum(pe[:, 1], 1))
        diffs.append(e_wave - cell)
        sigmas.append(cell * rel + 1e-4)
    d, s = np.concatenate(diffs), np.concatenate(sigmas)
    assert len(d) > 500
    assert np.all(np.abs(d) < 6 * s)
    assert 0.5 < np.std(d / s) < 1.5


def test_saturation_caps_the_samples() -> None:
    geo = load_geometry("epic")
    events = _gun(2, 5, pdg=11, p_range=(40.0, 40.0), eta_range=(-1.0, -0.9))
    rows = simulate_events(events, geo, np.random.default_rng(5), include_objects=False)
    top = 2 ** geo.calorimeters[0].waveform.adc_bits - 1  # type: ignore[union-attr]
    assert max(int(r["sample_adc"].max()) for r in rows) == top


def test_imaging_hits_follow_the_shower_and_muons_cross_each_layer(
        electrons: list[dict]) -> None:
    geo = load_geometry("epic")
    img = geo.imaging[0]
    per_layer = np.zeros(6)
    for r in electrons:
        sel = r["hit_subsystem"] == IMAGING
        per_layer += np.bincount(r["hit_layer"][sel], weights=r["hit_edep"][sel] / img.mip_gev,
                                 minlength=6)  # crossings (several may share a pixel)
        assert np.all(r["hit_particle"][sel] == 0)  # the gun electron started the shower
        assert np.allclose(np.hypot(r["hit_x"][sel], r["hit_y"][sel]),
                           img.radius[r["hit_layer"][sel]], atol=1e-3)
    per_layer /= len(electrons)
    # Rossi: crossings ~ (dE/dt) / E_c at each layer's depth in X0 (layer 0 in front: 1)
    c = geo.calorimeters[0]
    alpha, beta = gp_average(np.array([4.0]), c.critical_energy, c.z_eff)
    depth = np.concatenate([[0.0], np.cumsum([k.depth("x0") for k in geo.calorimeters[:5]])])
    expected = 4.0 * gamma.pdf(depth[1:], alpha[0], scale=1 / beta[0]) / c.critical_energy
    assert per_layer[0] == pytest.approx(1.0, abs=0.1)
    assert np.allclose(per_layer[1:], expected, rtol=0.3)
    muons = _gun(20, 7, pdg=13, p_range=(5.0, 5.0), eta_range=(-0.2, 0.2))
    rows = simulate_events(muons, geo, np.random.default_rng(7), include_objects=False,
                           decays=False)
    for r in rows:
        sel = r["hit_subsystem"] == IMAGING
        assert sorted(r["hit_layer"][sel]) == list(range(6))
    # hadrons: a charged pion crosses the front layer itself, a neutron never
    for pdg, front in ((-211, 1), (2112, 0)):
        rows = simulate_events(_gun(10, 8, pdg=pdg, p_range=(10.0, 10.0),
                                    eta_range=(-0.2, 0.2)), geo, np.random.default_rng(8),
                               include_objects=False, decays=False)
        layers = [r["hit_layer"][r["hit_subsystem"] == IMAGING] for r in rows]
        assert [int(np.sum(lay == 0)) for lay in layers] == [front] * 10
        assert sum(len(lay) for lay in layers) > 10 * 5  # their showers image too


def test_bic_corpus_validates_and_sphenix_keeps_its_cells(electrons: list[dict],
                                                          tmp_path: Path) -> None:
    entry = write_indexed_shard(tmp_path, 0, events_to_table(electrons[:10]))
    assert entry["events"] == 10
    r = electrons[0]
    assert set(r["cell_layer"]) <= set(range(12))
    assert len(set(r["cell_id"])) == len(r["cell_id"])
    assert np.allclose(r["cell_z"], -41.25)  # fibre cells sit at the fibre centre
    rows = simulate_events(_gun(5, 1, pdg=11, p_range=(4.0, 4.0)), "sphenix",
                           np.random.default_rng(1), include_objects=False)
    assert all("waveform_cell" not in row and len(row["cell_energy"]) for row in rows)


@pytest.mark.slow
def test_bic_checks_pass() -> None:
    checks, _ = validation_bic.bic_checks(100, seed=1)
    assert [c.name for c in checks if c.passed] == ["bic_resolution", "bic_profile", "bic_z"]
