"""Generic CSV / Parquet hit tables with a YAML column mapping."""

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import yaml

from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.errors import NpfmError
from npfm.formats import hit_table
from npfm.formats.hit_table import load_mapping, read_hit_table

# Event 1: three hits (one noise, one without energy); event 2: particles only;
# event 3: one hit. Lengths in mm, energies in MeV.
HITS = pa.table({
    "evt": [1, 1, 1, 3], "hx": [310.0, 320.0, 330.0, 400.0], "hy": [0.0, 1.0, 2.0, 0.0],
    "hz": [5.0, 6.0, 7.0, 0.0], "edep": [0.002, None, 0.003, 0.001],
    "t": [1.5, 1.6, 1.7, 2.0], "pid": [10, 11, -1, 5], "lay": [0, 1, 2, 3],
})
PARTICLES = pa.table({
    "evt": [1, 1, 2, 3], "pid": [11, 10, 1, 5], "pdg": [211, 321, 11, 2212],
    "px": [500.0, 30.0, 100.0, 1000.0], "py": [0.0, 20.0, 0.0, 0.0],
    "pz": [10.0, 0.0, 0.0, 0.0], "vx": [0.0, 0.0, 0.0, 1.0], "vy": [0.0, 0.0, 0.0, 1.0],
    "vz": [1.0, 1.0, 0.0, 1.0],
})


def mapping(suffix: str = "csv", **changes: Any) -> dict[str, Any]:
    """A mapping dict; ``changes`` maps "section.key" to a new value (None deletes)."""
    m: dict[str, Any] = {
        "hits": {"file": f"hits.{suffix}", "subsystem": "TPC",
                 "columns": {"event": "evt", "x": "hx", "y": "hy", "z": "hz",
                             "energy": "edep", "time": "t", "particle": "pid",
                             "layer": "lay"},
                 "units": {"x": "mm", "y": "mm", "z": "mm", "energy": "MeV", "time": "ns"}},
        "particles": {"file": f"particles.{suffix}",
                      "columns": {"event": "evt", "key": "pid", "pdg": "pdg", "px": "px",
                                  "py": "py", "pz": "pz", "vx": "vx", "vy": "vy",
                                  "vz": "vz"},
                      "units": {"px": "MeV", "py": "MeV", "pz": "MeV", "vx": "mm",
                                "vy": "mm", "vz": "mm"}},
        "event": {"facility": "RHIC", "experiment": "sPHENIX", "data_level": "simulated",
                  "run": 7},
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = m
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return m


def write(tmp_path: Path, m: dict[str, Any], hits: pa.Table = HITS,
          particles: pa.Table = PARTICLES, suffix: str = "csv") -> Path:
    for table, name in ((hits, "hits"), (particles, "particles")):
        if suffix == "csv":
            pcsv.write_csv(table, tmp_path / f"{name}.csv")
        else:
            pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=2)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(m))
    return path


@pytest.mark.parametrize(("suffix", "batch_rows"), [("csv", None), ("parquet", 2)])
def test_round_trip_with_units_and_particles(tmp_path: Path, suffix: str,
                                             batch_rows: int | None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if batch_rows:  # events spanning Parquet batches
        monkeypatch.setattr(hit_table, "BATCH_ROWS", batch_rows)
    path = write(tmp_path, mapping(suffix), suffix=suffix)
    seen: list[int] = []
    events = list(read_hit_table(path, progress=seen.append))
    assert sum(seen) == 4
    check_table(events_to_table(events), "hit table")
    assert [e["event"] for e in events] == [1, 2, 3]
    first = events[0]
    assert (first["run"], first["facility"], first["data_level"]) == (7, "RHIC", "simulated")
    np.testing.assert_allclose(first["hit_x"], [31.0, 32.0, 33.0])  # mm -> cm
    np.testing.assert_allclose(first["hit_z"], [0.5, 0.6, 0.7])
    assert first["hit_edep"][0] == pytest.approx(2e-6)  # MeV -> GeV
    assert first["hit_edep"][1] is None  # empty cell: not measured
    assert first["hit_subsystem"].tolist() == ["TPC"] * 3
    assert first["hit_layer"].tolist() == [0, 1, 2]
    assert first["hit_particle"].tolist() == [1, 0, -1]  # pid 10 is row 1 of event 1
    assert first["hit_pid_class"].tolist() == [2, 1, 0]  # K, pi, noise
    # K+: pT = hypot(0.03, 0.02) = 0.036 GeV < 0.06 -> noise tag; pi+: 0.5 GeV
    assert first["hit_noise"].tolist() == [True, False, True]
    np.testing.assert_allclose(first["particle_px"], [0.5, 0.03])
    np.testing.assert_allclose(first["particle_vz"], [0.1, 0.1])
    assert "hit_x" not in events[1]
    assert events[1]["particle_pdg"].tolist() == [11]
    assert events[2]["hit_pid_class"].tolist() == [3]


def test_unsorted_input(tmp_path: Path) -> None:
    order = [3, 0, 2, 1]
    shuffled = HITS.take(order)
    path = write(tmp_path, mapping(), hits=shuffled)
    with pytest.raises(NpfmError, match=r"hits.csv line 3: event ids not in ascending order"):
        list(read_hit_table(path))
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping(**{"hits.sorted": False})))
    events = list(read_hit_table(path))
    assert [e["event"] for e in events] == [1, 2, 3]
    assert events[0]["hit_x"].tolist() == pytest.approx([31.0, 33.0, 32.0])  # file order


def test_no_particle_table_and_subsystem_column(tmp_path: Path) -> None:
    hits = HITS.append_column("det", pa.array(["TPC", "TPC", "MVTX", "INTT"]))
    m = mapping(**{"particles": None, "hits.subsystem": None, "hits.file": None,
                   "hits.columns.subsystem": "det", "hits.columns.energy": None,
                   "hits.units.energy": None})
    path = write(tmp_path, m, hits=hits)
    with pytest.raises(NpfmError, match=r"mapping\.yaml: hits\.file: no file given"):
        list(read_hit_table(path))
    events = list(read_hit_table(path, hits=tmp_path / "hits.csv"))
    check_table(events_to_table(events), "hit table")
    assert [e["event"] for e in events] == [1, 3]
    assert events[0]["hit_subsystem"].tolist() == ["TPC", "TPC", "MVTX"]
    assert events[0]["hit_track_id"].tolist() == [10, 11, -1]
    assert "hit_particle" not in events[0]
    assert "hit_edep" not in events[0]


@pytest.mark.parametrize(("changes", "message"), [
    ({"hits.colour": "red"}, r"mapping.yaml: hits.colour: unknown key"),
    ({"extra": {}}, r"mapping.yaml: extra: unknown key"),
    ({"hits.columns.x": None}, r"mapping.yaml: hits.columns.x: required key missing"),
    ({"event.facility": None}, r"mapping.yaml: event.facility: required key missing"),
    ({"event": None}, r"mapping.yaml: event: required section missing"),
    ({"event.colour": 1}, r"mapping.yaml: event.colour: unknown key"),
    ({"hits.units.x": "furlong"}, r"mapping.yaml: hits.units.x: unknown unit"),
    ({"hits.units.energy": "cm"}, r"mapping.yaml: hits.units.energy: is a length unit"),
    ({"hits.units.time": None}, r"mapping.yaml: hits.units.time: unit missing"),
    ({"particles.units.px": None}, r"mapping.yaml: particles.units.px: unit missing"),
    ({"hits.columns.particle": None}, r"mapping.yaml: hits.columns.particle: required"),
    ({"hits.subsystem": "WIRES"}, r"mapping.yaml: hits.subsystem: unknown subsystem"),
    ({"hits.subsystem": None}, r"mapping.yaml: hits.subsystem: give either"),
    ({"event.data_level": "guessed"}, r"mapping.yaml: event.data_level: unknown data level"),
    ({"hits.columns.x": "xx"}, r"mapping.yaml: hits.columns.x: column 'xx' not in .*hits.csv"),
    ({"particles.columns.pdg": "id"}, r"particles.columns.pdg: column 'id' not in"),
    ({"hits.file": "nothere.csv"}, r"nothere.csv: file not found"),
])
def test_mapping_errors(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    path = write(tmp_path, mapping(**changes))
    with pytest.raises(NpfmError, match=message):
        list(read_hit_table(path))


def test_data_errors(tmp_path: Path) -> None:
    m = mapping()
    nan_x = HITS.set_column(1, "hx", pa.array([310.0, float("nan"), 330.0, 400.0]))
    no_z = HITS.set_column(3, "hz", pa.array([5.0, 6.0, None, 0.0]))
    lost = HITS.set_column(6, "pid", pa.array([10, 11, 99, 5]))
    cases = [(nan_x, "hits.csv line 3 column hx: missing, NaN or infinite value"),
             (no_z, "hits.csv line 4 column hz: missing, NaN or infinite value"),
             (lost, "hits.csv line 4: particle key 99 not in the particle table of event 1")]
    for hits, message in cases:
        path = write(tmp_path, m, hits=hits)
        with pytest.raises(NpfmError, match=message):
            list(read_hit_table(path))
    (tmp_path / "hits.csv").write_text("evt,hx,hy,hz,edep,t,pid,lay\n1,abc,0,0,0,0,0,0\n")
    with pytest.raises(NpfmError, match=r"hits\.csv: cannot be read as csv"):
        list(read_hit_table(tmp_path / "mapping.yaml"))
    write(tmp_path, mapping("parquet"), suffix="parquet")
    (tmp_path / "hits.parquet").write_bytes((tmp_path / "hits.csv").read_bytes())
    with pytest.raises(NpfmError, match=r"hits\.parquet: cannot be read as parquet"):
        list(read_hit_table(tmp_path / "mapping.yaml"))
    (tmp_path / "bad.yaml").write_text("hits: [unclosed")
    with pytest.raises(NpfmError, match=r"bad\.yaml: not valid YAML"):
        load_mapping(tmp_path / "bad.yaml")
    with pytest.raises(NpfmError, match=r"nomap\.yaml: mapping file not found"):
        load_mapping(tmp_path / "nomap.yaml")
