"""Recipes read every registered format: npz, HepMC3 and hit tables through `curate`."""

from pathlib import Path

import numpy as np

from npfm.curate.pipeline import curate
from npfm.curate.recipe import load_recipe
from npfm.detectors import simulate_events
from npfm.events.build import events_to_table
from npfm.events.corpus import Corpus
from npfm.formats import fm4npp, hepmc3
from npfm.formats.registry import IMPORTERS
from npfm.physics import generate


def test_registry_lists_every_importer() -> None:
    assert set(IMPORTERS) == {"aleph_text", "aleph_root", "clas12_hipo", "edm4hep", "fm4npp",
                              "hit_table", "hepmc3", "trackml"}


def test_curate_npz_hepmc3_and_hit_table_sources(tmp_path: Path) -> None:
    gun = list(generate("gun", 6, seed=2, pdg=211, p_range=(0.5, 2.0), count=3))
    tpc = events_to_table(simulate_events(gun, "sphenix", np.random.default_rng(1)))
    fm4npp.write_fm4npp([tpc], tmp_path / "spacepoints_000.npz")
    hepmc3.write_hepmc3(generate("ee_z", 4, seed=3), tmp_path / "ee.hepmc3")
    (tmp_path / "hits.csv").write_text("evt,hx,hy,hz,edep\n0,100,0,5,1.5\n0,200,0,9,2.5\n"
                                       "1,150,10,3,1.0\n")
    (tmp_path / "map.yaml").write_text(
        "hits:\n  file: hits.csv\n  columns: {event: evt, x: hx, y: hy, z: hz, energy: edep}\n"
        "  units: {x: mm, y: mm, z: mm, energy: MeV}\n  subsystem: TPC\n"
        "event: {facility: RHIC, experiment: sPHENIX, data_level: real, run: 5}\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: formats\ntitle: t\nsplits: {train: 0.5, test: 0.5}\nsources:\n"
        '  - {name: npz, import: {format: fm4npp, paths: ["spacepoints_000.npz"]}}\n'
        '  - {name: hepmc, import: {format: hepmc3, paths: ["ee.hepmc3"],'
        " options: {detector: aleph, seed: 7}}}\n"
        '  - {name: dump, import: {format: hit_table, paths: ["map.yaml"]}}\n')
    report = curate(load_recipe(recipe), tmp_path / "c")
    assert {k: v["read"] for k, v in report["sources"].items()} == {"npz": 6, "hepmc": 4,
                                                                   "dump": 2}
    assert report["totals"]["quarantined"] == 0
    corpus = Corpus.open(tmp_path / "c")
    assert corpus.validate()["events"] == 12
    assert {e for s in corpus.shards for e in s["experiments"]} == {"sPHENIX", "ALEPH"}
