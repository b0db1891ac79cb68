"""Extra integer columns of a hit table kept without loss as extension columns."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot

from npfm.events.build import events_to_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.formats.edm4hep import read_edm4hep
from npfm.formats.export import export
from npfm.formats.hit_table import read_hit_table

# Large ids: a float32 or int16 detour would lose them.
HITS = "hit_id,x,y,z,volume_id,layer_id,module_id,particle_id,key,e\n" \
       "1,-64.4,-7.2,-1502.5,7,2,1,11,9007199254740993,1\n" \
       "2,-55.3,0.6,-1502.5,7,2,1,0,-5,2\n3,-83.8,-1.1,-1502.5,8,4,15,12,123456789012,3\n"
PARTICLES = "particle_id,pdg,px,py,pz,nhits\n11,211,0.5,0.1,1.0,1\n12,-13,2.0,0.0,1.0,1\n"
MAPPING = """hits:
  file: event000001234-hits.csv
  event_from_name: 'event(\\d+)-hits'
  noise_key: 0
  subsystem: PIXEL
  columns: {x: x, y: y, z: z, particle: particle_id, layer: layer_id, energy: e}
  units: {x: mm, y: mm, z: mm, energy: keV}
  extra_columns: {volume_id: volume_id, module_id: module_id,
                  key: {column: key, description: my detector key}}
particles:
  file: event000001234-particles.csv
  event_from_name: 'event(\\d+)-particles'
  columns: {key: particle_id, pdg: pdg, px: px, py: py, pz: pz}
  units: {px: GeV, py: GeV, pz: GeV}
  extra_columns: {nhits: nhits}
event: {facility: LHC, experiment: TrackML, data_level: simulated}
"""


def _write(tmp_path: Path, mapping: str = MAPPING, hits: str = HITS) -> Path:
    (tmp_path / "event000001234-hits.csv").write_text(hits)
    (tmp_path / "event000001234-particles.csv").write_text(PARTICLES)
    (tmp_path / "map.yaml").write_text(mapping)
    return tmp_path / "map.yaml"


def test_extra_columns_reach_the_corpus_exactly(tmp_path: Path,
                                                make_corpus: Callable[..., Path]) -> None:
    (event,) = list(read_hit_table(_write(tmp_path)))
    path = make_corpus(tmp_path / "c", events_to_table([event]))
    corpus = Corpus.open(path)
    corpus.validate()
    assert corpus.extensions == {
        "hit_ext_key": "my detector key",
        "hit_ext_module_id": "integer column 'module_id' of the hits table, as given",
        "hit_ext_volume_id": "integer column 'volume_id' of the hits table, as given",
        "particle_ext_nhits": "integer column 'nhits' of the particles table, as given"}
    events = corpus.to_awkward()
    assert events.hit_ext_volume_id[0].to_list() == [7, 7, 8]
    assert events.hit_ext_module_id[0].to_list() == [1, 1, 15]
    assert events.hit_ext_key[0].to_list() == [9007199254740993, -5, 123456789012]
    assert events.particle_ext_nhits[0].to_list() == [1, 1]
    assert events.hit_layer[0].to_list() == [2, 2, 4]  # the mapped column, unchanged


def test_parquet_hit_table_extra_columns(tmp_path: Path) -> None:
    table = pa.table({"evt": [5, 5], "x": [1.0, 2.0], "y": [0.0, 0.0], "z": [0.0, 0.0],
                      "vol": pa.array([7, 9], pa.int32()), "w": [0.5, 1.0]})
    pq.write_table(table, tmp_path / "hits.parquet")
    base = ("hits: {file: hits.parquet, subsystem: PIXEL, columns: {event: evt, x: x, y: y, "
            "z: z}, units: {x: cm, y: cm, z: cm}, extra_columns: {EXTRA}}\n"
            "event: {facility: LHC, experiment: TrackML, data_level: simulated}\n")
    (tmp_path / "m.yaml").write_text(base.replace("EXTRA", "vol: vol"))
    (event,) = list(read_hit_table(tmp_path / "m.yaml"))
    assert list(event["hit_ext_vol"]) == [7, 9]
    (tmp_path / "m.yaml").write_text(base.replace("EXTRA", "w: w"))
    with pytest.raises(NpfmError, match=r"hits.parquet column w: not an integer column "
                                        r"\(type double\); fix: map only integer columns"):
        list(read_hit_table(tmp_path / "m.yaml"))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("volume_id: volume_id,", "volume_id: vol_id,", r"map.yaml: hits.extra_columns.volume_id:"
     r" column 'vol_id' not in .*hits.csv \(columns: hit_id, x"),
    ("volume_id: volume_id,", "Volume: volume_id,", r"hits.extra_columns.Volume: not a valid "
     r"extension name"),
    ("volume_id: volume_id,", "volume_id: x,", r"hits.csv column x: not an integer column "
     r"\(read as double\); fix: map only integer columns under hits.extra_columns"),
    ("volume_id: volume_id,", "volume_id: hit_id, v: x,", r"hits.csv column x: not an "
     r"integer column \(read as double\)"),
    ("{nhits: nhits}", "[nhits]", r"particles.extra_columns: not a mapping"),
    ("description: my detector key", "colour: red", r"extra_columns.key.colour: unknown key"),
])
def test_bad_extra_columns_in_one_line(tmp_path: Path, old: str, new: str,
                                       message: str) -> None:
    assert old in MAPPING
    with pytest.raises(NpfmError, match=message):
        list(read_hit_table(_write(tmp_path, MAPPING.replace(old, new))))


def test_empty_or_fractional_cells_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NpfmError, match=r"hits.csv line 3 column module_id: missing value "
                                        "in an extra column"):
        list(read_hit_table(_write(tmp_path, hits=HITS.replace("7,2,1,0", "7,2,,0"))))
    with pytest.raises(NpfmError, match=r"hits.csv column volume_id: not an integer column "
                                        r"\(.*'7.5'\)"):
        list(read_hit_table(_write(tmp_path, hits=HITS.replace("8,4,15", "7.5,4,15"))))


def test_exports_carry_the_extensions_where_the_format_can(
        tmp_path: Path, make_corpus: Callable[..., Path]) -> None:
    mapping = MAPPING.replace("subsystem: PIXEL", "subsystem: TPC")
    (event,) = list(read_hit_table(_write(tmp_path, mapping)))
    path = make_corpus(tmp_path / "c", events_to_table([{**event, "experiment": "sPHENIX"}]))
    export(path, "fm4npp", tmp_path / "spacepoints_000.npz")
    with np.load(tmp_path / "hit_ext_volume_id_000.npz") as ext:
        assert ext["data"].tolist() == [7, 7, 8]  # one per exported point
    with np.load(tmp_path / "hit_ext_key_000.npz") as ext:
        assert ext["data"].tolist() == [9007199254740993, -5, 123456789012]
    export(path, "edm4hep", tmp_path / "e.root")
    with uproot.open(tmp_path / "e.root") as f:
        tree = f["events"]
        assert tree["TPCHits_ext_module_id"].array().to_list() == [[1, 1, 15]]
        assert tree["MCParticles_ext_nhits"].array().to_list() == [[1, 1]]
        meta = json.loads(f["npfm_edm4hep"])
    assert meta["collections"]["TPCHits_ext_key"] == {
        "type": "podio::UserDataCollection<int64_t>", "elementsOf": "TPCHits",
        "column": "hit_ext_key", "description": "my detector key"}
    (back,) = list(read_edm4hep(tmp_path / "e.root"))  # read back as extensions
    assert back["hit_ext_key"].tolist() == [9007199254740993, -5, 123456789012]
    assert back["particle_ext_nhits"].tolist() == [1, 1]
    assert back["extensions"]["hit_ext_key"] == "my detector key"
    events_to_table([back])  # a valid event with its extensions
    assert export(path, "hepmc3", tmp_path / "e.hepmc3").startswith("1 events")
    lines = (tmp_path / "e.hepmc3").read_text().splitlines()
    assert [ln for ln in lines if "_ext_" in ln] == [  # particle extensions: attributes
        "A 1 particle_ext_nhits 1", "A 2 particle_ext_nhits 1"]
