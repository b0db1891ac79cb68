"""CLAS12 HIPO files written here with hipopy (the CLAS12 bank layouts), read back into
the event model; damaged files give one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from npfm.curate.pipeline import curate
from npfm.curate.recipe import load_recipe
from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.formats.clas12_hipo import read_clas12_hipo

# CLAS12 bank definitions (coatjava etc/bankdefs/hipo4): name, group, item, columns
REC_PARTICLE = ("REC::Particle", 300, 31, {
    "pid": "I", "px": "F", "py": "F", "pz": "F", "vx": "F", "vy": "F", "vz": "F", "vt": "F",
    "charge": "B", "beta": "F", "chi2pid": "F", "status": "S"})
MC_PARTICLE = ("MC::Particle", 40, 2, {
    "pid": "I", "px": "F", "py": "F", "pz": "F", "vx": "F", "vy": "F", "vz": "F", "vt": "F"})
RUN_CONFIG = ("RUN::config", 10000, 11, {
    "run": "I", "event": "I", "unixtime": "I", "trigger": "L", "timestamp": "L", "type": "B",
    "mode": "B", "torus": "F", "solenoid": "F"})
# per event: REC::Particle rows (pid, px, py, pz, vz, charge)
EVENTS = [
    [(11, 0.5, 0.1, 5.0, -3.1, -1), (211, -0.2, 0.3, 1.0, -3.0, 1), (22, 0.1, 0.0, 0.8, -3.0, 0)],
    [(11, -0.4, 0.6, 6.0, -2.5, -1), (0, 0.1, 0.2, 0.5, -2.4, 1), (2112, 0.3, 0.1, 1.1, 0.0, 0),
     (45, 0.2, 0.2, 0.6, -2.6, 1)],
]


def write_hipo(path: Path, *, mc: bool = True, config: bool = True) -> Path:
    """A CLAS12-layout HIPO file of ``EVENTS`` written with hipopy."""
    import hipopy.hipopy as hipopy

    banks = [REC_PARTICLE, *([MC_PARTICLE] if mc else []), *([RUN_CONFIG] if config else [])]
    f = hipopy.create(str(path))
    for name, group, item, columns in banks:
        f.newTree(name, columns, group=group, item=item)
    f.open()
    for k, rows in enumerate(EVENTS):
        rec = np.zeros((12, len(rows)))
        for j, (pid, px, py, pz, vz, q) in enumerate(rows):
            rec[[0, 1, 2, 3, 6, 8], j] = pid, px, py, pz, vz, q
        data = {"REC::Particle": [rec]}
        if mc:
            data["MC::Particle"] = [np.array([[11.0, 2212.0], [0.5, 0.0], [0.1, 0.0],
                                              [5.0, 0.9], [0, 0], [0, 0], [-3.1, -3.1],
                                              [0, 0]])]
        if config:
            data["RUN::config"] = [np.array([[5038.0], [100.0 + k], [0], [0], [0], [0],
                                             [0], [-1.0], [-1.0]])]
        f.extend(data)
    f.close()
    return path


def test_reads_particles_objects_and_run(tmp_path: Path) -> None:
    rows = list(read_clas12_hipo(write_hipo(tmp_path / "a.hipo")))
    assert len(rows) == 2
    first, second = rows
    assert (first["run"], first["event"], second["event"]) == (5038, 100, 101)
    assert first["magnetic_field"] == 5.0
    assert first["data_level"] == "simulated"
    assert first["experiment"] == "CLAS12"
    assert list(first["object_type"]) == ["electron", "charged_track", "photon"]
    assert list(second["object_type"]) == ["electron", "charged_track", "neutral_hadron",
                                           "charged_track"]
    assert second["object_mass"] == pytest.approx([0.000511, 0.13957, 0.939565, 1.875613],
                                                  abs=1e-5)
    assert first["object_pz"] == pytest.approx([5.0, 1.0, 0.8])
    assert first["object_z0"] == pytest.approx([-3.1, -3.0, -3.0])
    assert list(first["object_charge"]) == [-1.0, 1.0, 0.0]
    assert list(first["particle_pdg"]) == [11, 2212]
    check_table(events_to_table(rows, "hipo"), "hipo")


def test_real_data_without_run_config(tmp_path: Path) -> None:
    rows = list(read_clas12_hipo(write_hipo(tmp_path / "b.hipo", mc=False, config=False),
                                 run=7))
    assert [(r["run"], r["event"]) for r in rows] == [(7, 0), (7, 1)]
    assert rows[0]["data_level"] == "real"
    assert "particle_pdg" not in rows[0]
    assert "magnetic_field" not in rows[0]


def test_as_a_recipe_format(tmp_path: Path) -> None:
    write_hipo(tmp_path / "c.hipo")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: t\ntitle: t\nsplits: {train: 0.5, test: 0.5}\nsources:\n"
                      '  - {name: clas12, import: {format: clas12_hipo, paths: ["c.hipo"]}}\n')
    report = curate(load_recipe(recipe), tmp_path / "corpus")
    assert report["sources"]["clas12"]["kept"] == 2
    assert Corpus.open(tmp_path / "corpus").validate()["events"] == 2


def test_damaged_files_fail_clearly(tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                    ) -> None:
    good = write_hipo(tmp_path / "good.hipo").read_bytes()
    truncated = tmp_path / "truncated.hipo"
    truncated.write_bytes(good[: len(good) * 2 // 3])
    capfd.readouterr()
    with pytest.raises(NpfmError, match=r"truncated.hipo.*corrupt or truncated HIPO file"):
        list(read_clas12_hipo(truncated))
    assert "Assertion" not in capfd.readouterr().err  # the reader's own abort is not shown
    text = tmp_path / "events.txt"
    text.write_text("run 1 event 2\n")
    with pytest.raises(NpfmError, match=r"events.txt.*not a HIPO file"):
        list(read_clas12_hipo(text))
    with pytest.raises(NpfmError, match="no such file"):
        list(read_clas12_hipo(tmp_path / "missing.hipo"))


def test_file_without_particle_banks(tmp_path: Path) -> None:
    import hipopy.hipopy as hipopy

    path = tmp_path / "config.hipo"
    f = hipopy.create(str(path))
    name, group, item, columns = RUN_CONFIG
    f.newTree(name, columns, group=group, item=item)
    f.open()
    f.extend({name: [np.zeros((9, 1))]})
    f.close()
    with pytest.raises(NpfmError, match="no REC::Particle or MC::Particle bank"):
        list(read_clas12_hipo(path))
