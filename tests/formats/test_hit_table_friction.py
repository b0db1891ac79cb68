"""Hit tables as users have them: compressed, the event id in the file name, noise as
particle key 0, integer detector ids, a generic subsystem."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.errors import NpfmError
from npfm.formats.hit_table import read_hit_table

HITS = "hit_id,x,y,z,volume_id,layer_id,module_id,particle_id\n" \
       "1,-64.4,-7.2,-1502.5,7,2,1,11\n2,-55.3,0.6,-1502.5,7,2,1,0\n" \
       "3,-83.8,-1.1,-1502.5,8,4,15,12\n"
PARTICLES = "particle_id,pdg,px,py,pz\n11,211,0.5,0.1,1.0\n12,-13,2.0,0.0,1.0\n"
MAPPING = """hits:
  file: event000001234-hits.csv.gz
  event_from_name: 'event(\\d+)-hits'
  noise_key: 0
  subsystem: PIXEL
  columns: {x: x, y: y, z: z, particle: particle_id, layer: layer_id, module: module_id}
  units: {x: mm, y: mm, z: mm}
particles:
  file: event000001234-particles.csv
  event_from_name: 'event(\\d+)-particles'
  columns: {key: particle_id, pdg: pdg, px: px, py: py, pz: pz}
  units: {px: GeV, py: GeV, pz: GeV}
event: {facility: LHC, experiment: TrackML, data_level: simulated}
"""


def _write(tmp_path: Path, mapping: str = MAPPING) -> Path:
    with gzip.open(tmp_path / "event000001234-hits.csv.gz", "wt") as fh:
        fh.write(HITS)
    (tmp_path / "event000001234-particles.csv").write_text(PARTICLES)
    (tmp_path / "map.yaml").write_text(mapping)
    return tmp_path / "map.yaml"


def test_trackml_like_table_without_preprocessing(tmp_path: Path) -> None:
    (event,) = list(read_hit_table(_write(tmp_path)))
    assert event["event"] == 1234
    np.testing.assert_allclose(event["hit_x"], [-6.44, -5.53, -8.38])
    assert list(event["hit_particle"]) == [0, -1, 1]  # particle key 0 is noise
    assert list(event["hit_module"]) == [1, 1, 15]
    assert list(event["hit_layer"]) == [2, 2, 4]
    assert list(event["hit_subsystem"]) == ["PIXEL"] * 3
    check_table(events_to_table([event]), "t")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("'event(\\d+)-hits'", "'run(\\d+)'", r"hits.csv.gz: no event id in the file name by "
     r"pattern 'run\(\\\\d\+\)'"),
    ("'event(\\d+)-hits'", "'event-hits'", r"hits.event_from_name: has no group"),
    ("noise_key: 0", "noise_key: none", r"hits.noise_key: 'none' is not a whole number"),
    ("  noise_key: 0\n", "", r"hits.csv.gz line 3: particle key 0 not in the particle table"),
    ("subsystem: PIXEL", "subsystem: ITK", r"hits.subsystem: unknown subsystem 'ITK'; fix: "
     r"use one of .*PIXEL, STRIP, DRIFT, CALO"),
])
def test_friction_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in MAPPING
    with pytest.raises(NpfmError, match=message):
        list(read_hit_table(_write(tmp_path, MAPPING.replace(old, new))))


def test_one_mapping_for_a_directory_of_event_files(tmp_path: Path) -> None:
    for number, shift in ((1236, 1.0), (1234, 0.0), (1235, 2.0)):
        with gzip.open(tmp_path / f"event{number:09d}-hits.csv.gz", "wt") as fh:
            fh.write(HITS.replace("-64.4", str(-64.4 + shift)))
        (tmp_path / f"event{number:09d}-particles.csv").write_text(PARTICLES)
    mapping = MAPPING.replace("file: event000001234-hits.csv.gz", "file: event*-hits.csv.gz"
                              ).replace("file: event000001234-particles.csv",
                                        "file: event*-particles.csv")
    (tmp_path / "map.yaml").write_text(mapping)
    events = list(read_hit_table(tmp_path / "map.yaml"))
    assert [e["event"] for e in events] == [1234, 1235, 1236]
    np.testing.assert_allclose([e["hit_x"][0] for e in events], [-6.44, -6.24, -6.34])
    assert all(list(e["hit_particle"]) == [0, -1, 1] for e in events)
    (tmp_path / "map.yaml").write_text(mapping.replace("event*-hits", "nothing*-hits"))
    with pytest.raises(NpfmError, match=r"hits.file: '.*nothing\*-hits.csv.gz' matches no "
                       "file"):
        list(read_hit_table(tmp_path / "map.yaml"))
