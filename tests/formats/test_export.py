"""`npfm export` and `Corpus.to_awkward`: a simulated corpus out to FM4NPP npz, EDM4hep
and HepMC3, read back with each format's own reader."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot
from tests.conftest import write_corpus
from typer.testing import CliRunner

from npfm.cli import app
from npfm.detectors import simulate_events
from npfm.events.build import events_to_table
from npfm.events.corpus import Corpus
from npfm.formats.fm4npp import read_fm4npp
from npfm.formats.hepmc3 import read_hepmc3
from npfm.physics import generate

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six simulated sPHENIX pp200 events in two shards."""
    events = simulate_events(list(generate("pp200", 6, seed=5)), "sphenix",
                             np.random.default_rng(2))
    return write_corpus(tmp_path_factory.mktemp("export") / "c", events_to_table(events),
                        shard_events=3)


def _export(corpus: Path, to: str, out: Path) -> str:
    result = runner.invoke(app, ["export", str(corpus), "--to", to, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output


def _stored(corpus: Path, column: str) -> list:
    return pq.read_table(sorted((corpus / "shards").glob("*.parquet")), columns=[column]
                         ).column(column).to_pylist()


def test_to_awkward_holds_the_stored_events(corpus: Path) -> None:
    events = Corpus.open(corpus).to_awkward(["run", "event", "hit_x", "particle_pdg"])
    assert len(events) == 6
    assert events.fields == ["run", "event", "hit_x", "particle_pdg"]
    assert events["hit_x"].to_list() == _stored(corpus, "hit_x")
    first = Corpus.open(corpus).to_awkward(["hit_z"], limit=4)
    assert first["hit_z"].to_list() == _stored(corpus, "hit_z")[:4]


def test_hepmc3_export_carries_the_truth_particles(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "truth.hepmc3"
    assert "6 events of truth particles" in _export(corpus, "hepmc3", out)
    back = list(read_hepmc3(out))
    pdg, px = _stored(corpus, "particle_pdg"), _stored(corpus, "particle_px")
    assert [ev.pdg.tolist() for ev in back] == pdg
    for ev, stored in zip(back, px, strict=True):
        np.testing.assert_allclose(ev.px, np.asarray(stored, np.float32), rtol=1e-6)
    assert [ev.parent.tolist() for ev in back] == _stored(corpus, "particle_parent")


def test_edm4hep_and_fm4npp_exports_hold_the_hits(corpus: Path, tmp_path: Path) -> None:
    _export(corpus, "edm4hep", tmp_path / "events.edm4hep.root")
    with uproot.open(tmp_path / "events.edm4hep.root") as f:
        tree = f["events"]
        assert tree.num_entries == 6
        n_pdg = sum(len(x) for x in tree["MCParticles.PDG"].array(library="np"))
    assert n_pdg == sum(len(x) for x in _stored(corpus, "particle_pdg"))
    _export(corpus, "fm4npp", tmp_path / "tpc.npz")
    subsystems = _stored(corpus, "hit_subsystem")
    back = list(read_fm4npp(tmp_path / "tpc.npz"))
    assert [len(ev["hit_x"]) for ev in back] == [s.count("TPC") for s in subsystems]


def test_export_refuses_to_overwrite_and_unknown_formats(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.hepmc3"
    out.write_text("keep me")
    for to, match in (("hepmc3", "already exists"), ("root", "unknown export format")):
        result = runner.invoke(app, ["export", str(corpus), "--to", to, "--out", str(out)])
        assert result.exit_code == 2
        assert match in result.stderr
    assert out.read_text() == "keep me"
