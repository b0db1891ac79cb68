"""EDM4hep: export a simulated corpus, read it back; podio naming variants; bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pytest
import uproot

from npfm.detectors import simulate_events
from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.formats.edm4hep import METADATA_KEY, collection_id, read_edm4hep
from npfm.formats.edm4hep_export import write_edm4hep
from npfm.physics import generate


@pytest.fixture(scope="module")
def simulated() -> pa.Table:
    """K0S (decaying to pi+ pi-: parent links) and pion-gun events through ePIC's trackers
    (no calorimeter: cells do not travel through EDM4hep here)."""
    rng = np.random.default_rng(2)
    kaons = list(generate("gun", 4, seed=5, pdg=310, count=2, p_range=(1.0, 3.0)))
    pions = list(generate("gun", 3, seed=6, pdg=-211, count=3, eta_range=(-1.0, 1.0)))
    events = simulate_events(kaons, "epic", rng, run=5, calorimeter=False) + \
        simulate_events(pions, "epic", rng, run=5, first_event=100, calorimeter=False)
    return events_to_table(events)


def test_collection_ids_match_podio() -> None:
    # IDs printed from an ePIC podio file in eic/EICrecon pull request 1392.
    assert collection_id("TrackerEndcapHits") == 1948551886
    assert collection_id("SiEndcapTrackerRawHits") == 1932353945


def _by_subsystem(event: dict[str, Any], key: str, subsystem: str) -> np.ndarray:
    return np.asarray(event[key])[np.asarray(event["hit_subsystem"]) == subsystem]


def test_export_and_read_back(simulated: pa.Table, tmp_path: Path,
                              make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus(tmp_path / "corpus", simulated, shard_events=4)
    seen: list[int] = []
    totals = write_edm4hep(corpus, tmp_path / "out.edm4hep.root", progress=seen.append)
    assert totals["events"] == sum(seen) == simulated.num_rows == 7
    with uproot.open(tmp_path / "out.edm4hep.root") as f:
        names = set(f["events"].keys())
        assert {"MCParticles.PDG", "MCParticles.vertex.x", "MCParticles.parents_begin",
                "_MCParticles_parents.index", "_MCParticles_daughters.collectionID",
                "SVTHits.position.x", "SVTHits.eDep", "_MPGDHits_particle.index",
                "EventHeader.runNumber"} <= names
        ids = f["events"]["_SVTHits_particle.collectionID"].array(library="np")
        assert set(np.concatenate(ids)) <= {collection_id("MCParticles"), 2 ** 32 - 2}
        x_mm = f["events"]["SVTHits.position.x"].array(library="np")[0]
        tree = f["events"].arrays(["MCParticles.daughters_begin", "MCParticles.daughters_end",
                                   "_MCParticles_daughters.index"], library="np")
    for i, parents in enumerate(simulated.column("particle_parent").to_pylist()):
        begin, end = (tree[f"MCParticles.daughters_{k}"][i] for k in ("begin", "end"))
        daughters = tree["_MCParticles_daughters.index"][i]
        assert [daughters[b:e].tolist() for b, e in zip(begin, end, strict=True)] == \
            [[c for c, p in enumerate(parents) if p == j] for j in range(len(parents))]
    read: list[int] = []
    events = list(read_edm4hep(tmp_path / "out.edm4hep.root", step_size=3,
                               event_fields={"geometry_id": "ePIC"}, progress=read.append))
    assert read == [3, 3, 1]
    assert {e["geometry_id"] for e in events} == {"ePIC"}
    check_table(events_to_table(events), "edm4hep")
    original = simulated.to_pylist()
    assert len(events) == len(original)
    first_svt = _by_subsystem(original[0], "hit_x", "SVT")
    np.testing.assert_allclose(x_mm, first_svt * 10, rtol=1e-6)  # mm in the file
    for got, want in zip(events, original, strict=True):
        assert (got["run"], got["event"], got["subsystems"]) == \
            (want["run"], want["event"], ["SVT", "MPGD"])
        assert got["particle_pdg"].tolist() == want["particle_pdg"]
        for key in ("particle_px", "particle_py", "particle_pz", "particle_charge"):
            np.testing.assert_array_equal(got[key].astype(np.float32), want[key])
        for key in ("particle_vx", "particle_vy", "particle_vz", "particle_vt"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-9)
        assert got["particle_parent"].tolist() == want["particle_parent"]
        assert got["particle_primary"].tolist() == want["particle_primary"]
        assert got["particle_nhits"].tolist() == want["particle_nhits"]
        assert sorted(got["hit_subsystem"]) == sorted(want["hit_subsystem"])
        for subsystem in ("SVT", "MPGD"):
            for key in ("hit_x", "hit_y", "hit_z", "hit_t", "hit_edep"):
                np.testing.assert_allclose(_by_subsystem(got, key, subsystem),
                                           _by_subsystem(want, key, subsystem), rtol=1e-6)
            for key in ("hit_particle", "hit_track_id", "hit_pid_class", "hit_noise"):
                np.testing.assert_array_equal(_by_subsystem(got, key, subsystem),
                                              _by_subsystem(want, key, subsystem))
    assert any(-1 in e["hit_particle"] for e in events)  # noise hits: unset links
    assert any((e["particle_parent"] >= 0).any() for e in events)
    # Tables, a Corpus object and an explicit collection mapping work the same way.
    mapping = {"VertexBarrelHits": "SVT", "MPGDBarrelHits": "MPGD"}
    empty = events_to_table([{"facility": "EIC", "experiment": "ePIC", "run": 5, "event": 7,
                               "data_level": "simulated"}])
    rows = simulated.to_pylist()
    rows[1]["hit_t"] = rows[1]["particle_vt"] = None  # unmeasured: 0 in EDM4hep
    untimed = events_to_table(rows)
    write_edm4hep([untimed, empty], tmp_path / "epic.root", collections=mapping)
    assert write_edm4hep(Corpus.open(corpus), tmp_path / "again.root") == totals
    again = list(read_edm4hep(tmp_path / "epic.root", collections=mapping))
    assert [len(e["hit_x"]) for e in again] == [len(e["hit_x"]) for e in events] + [0]
    assert len(again[-1]["particle_pdg"]) == 0
    assert not again[1]["hit_t"].any()
    assert not again[1]["particle_vt"].any()
    np.testing.assert_allclose(again[2]["hit_t"], events[2]["hit_t"])


def write_podio(path: Path, collections: dict[str, dict[str, list[Any]]],
                tree: str = "events") -> Path:
    """Collections as podio-named branches ``<collection>.<field>``, one list per event."""
    data = {name: ak.zip({k: ak.Array(v) for k, v in fields.items()})
            for name, fields in collections.items()}
    with uproot.recreate(path) as f:
        t = f.mktree(tree, {k: v.type.content for k, v in data.items()},
                     field_name=lambda outer, inner: f"{outer}.{inner}",
                     counter_name=lambda counted: f"{counted}_size")
        t.extend(data)
    return path


def hand_made(link: str = "_VertexBarrelHits_particle", edep: str = "eDep",
              parents: str = "_MCParticles_parents", **hits: list[Any]
              ) -> dict[str, dict[str, list[Any]]]:
    """Two events: a K0S decaying to pi+ pi- with two hits, then a photon and no hits."""
    return {
        "MCParticles": {"PDG": [[310, 211, -211], [22]], "charge": [[0.0, 1.0, -1.0], [0.0]],
                        "time": [[0.0, 0.1, 0.1], [0.0]],
                        "simulatorStatus": [[0, 1 << 30, 1 << 30], [0]],
                        "vertex.x": [[0.0, 10.0, 10.0], [0.0]], "vertex.y": [[0.0] * 3, [1.0]],
                        "vertex.z": [[0.0] * 3, [0.0]], "momentum.x": [[1.0, 0.6, 0.4], [2.0]],
                        "momentum.y": [[0.0, 0.1, -0.1], [0.0]],
                        "momentum.z": [[0.0] * 3, [0.5]], "parents_begin": [[0, 0, 1], [0]],
                        "parents_end": [[0, 1, 2], [0]]},
        parents: {"index": [[0, 0], []], "collectionID": [[7, 7], []]},
        "VertexBarrelHits": {"position.x": [[36.0, 48.0], []], "position.y": [[1.0, 2.0], []],
                             "position.z": [[-5.0, 5.0], []], "time": [[0.2, 0.3], []],
                             edep: [[1e-4, 2e-4], []], **hits},
        link: {"index": [[1, -2], []], "collectionID": [[7, -2], []]},
    }


@pytest.mark.parametrize(("link", "edep", "parents"), [
    ("_VertexBarrelHits_particle", "eDep", "_MCParticles_parents"),  # EDM4hep >= 0.99
    ("_VertexBarrelHits_MCParticle", "EDep", "_MCParticles_parents"),  # EDM4hep 0.10
    ("VertexBarrelHits#0", "EDep", "MCParticles#0"),  # older podio
])
def test_link_branch_variants(tmp_path: Path, link: str, edep: str, parents: str) -> None:
    path = write_podio(tmp_path / "v.root", hand_made(link, edep, parents))
    first, second = read_edm4hep(path, run=7)
    assert (first["run"], first["event"], second["event"]) == (7, 0, 1)  # no EventHeader
    assert first["subsystems"] == ["SVT"]
    assert list(first["hit_subsystem"]) == ["SVT"] * 2
    np.testing.assert_allclose(first["hit_x"], [3.6, 4.8])  # mm -> cm
    np.testing.assert_allclose(first["particle_vx"], [0.0, 1.0, 1.0])
    np.testing.assert_allclose(first["hit_edep"], [1e-4, 2e-4])
    assert first["hit_particle"].tolist() == [1, -1]
    assert first["hit_pid_class"].tolist() == [1, 0]
    assert first["particle_parent"].tolist() == [-1, 0, 0]
    assert first["particle_primary"].tolist() == [True, False, False]
    assert first["particle_nhits"].tolist() == [[0], [1], [0]]
    assert len(second["hit_x"]) == 0
    assert second["particle_pdg"].tolist() == [22]
    check_table(events_to_table([first, second]), "variants")


def test_bad_input(tmp_path: Path) -> None:
    good = write_podio(tmp_path / "good.root", hand_made())
    with pytest.raises(NpfmError, match="file not found"):
        list(read_edm4hep(tmp_path / "missing.root"))
    (tmp_path / "text.root").write_text("not a ROOT file at all\n" * 5)
    with pytest.raises(NpfmError, match="not a ROOT file"):
        list(read_edm4hep(tmp_path / "text.root"))
    (tmp_path / "cut.root").write_bytes(good.read_bytes()[:good.stat().st_size * 2 // 3])
    with pytest.raises(NpfmError, match=r"cut\.root: truncated"):
        list(read_edm4hep(tmp_path / "cut.root"))
    with pytest.raises(NpfmError, match=r"no tree 'events' \(the file holds \['t'\]\)"):
        list(read_edm4hep(write_podio(tmp_path / "t.root", hand_made(), tree="t")))
    no_pdg = hand_made()
    del no_pdg["MCParticles"]["PDG"]
    with pytest.raises(NpfmError, match=r"tree events: no branch 'MCParticles.PDG'"):
        list(read_edm4hep(write_podio(tmp_path / "nopdg.root", no_pdg)))
    nan = hand_made()
    nan["MCParticles"]["vertex.y"] = [[0.0] * 3, [float("nan")]]
    with pytest.raises(NpfmError, match=r"branch MCParticles.vertex.y entry 1: "
                       "non-finite value nan"):
        list(read_edm4hep(write_podio(tmp_path / "nan.root", nan)))
    far = hand_made()
    far["_VertexBarrelHits_particle"]["index"] = [[1, 3], []]
    with pytest.raises(NpfmError, match=r"entry 0 branch _VertexBarrelHits_particle.index: "
                       "2 links for 2 hits, up to index 3 for 3 particles"):
        list(read_edm4hep(write_podio(tmp_path / "far.root", far)))
    orphan = hand_made()
    orphan["_MCParticles_parents"]["index"] = [[0, 5], []]
    with pytest.raises(NpfmError, match=r"entry 0 branch _MCParticles_parents.index: parent "
                       "link outside the 3 particles"):
        list(read_edm4hep(write_podio(tmp_path / "orphan.root", orphan)))
    with pytest.raises(NpfmError, match=r"no branch 'OtherHits.position.x'"):
        list(read_edm4hep(good, collections={"OtherHits": "SVT"}))
    with pytest.raises(NpfmError, match=r"unknown subsystem\(s\) \['WIRES'\]"):
        list(read_edm4hep(good, collections={"VertexBarrelHits": "WIRES"}))


def test_export_needs_one_collection_per_subsystem(simulated: pa.Table, tmp_path: Path
                                                   ) -> None:
    with pytest.raises(NpfmError, match="one collection per subsystem"):
        write_edm4hep([simulated], tmp_path / "x.root", collections={"SVTHits": "SVT"})
    negative = simulated.set_column(simulated.schema.get_field_index("run"), "run",
                                    pa.array([-1] * simulated.num_rows, pa.int64()))
    with pytest.raises(NpfmError, match="outside EventHeader's runNumber"):
        write_edm4hep([negative], tmp_path / "x.root")
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def _with(table: pa.Table, column: str, value: int) -> pa.Table:
    """``table`` with every hit's ``column`` (int32) set to ``value``."""
    lists = table.column(column).combine_chunks()
    values = pa.array(np.full(len(lists.flatten()), value), pa.int32())
    return table.set_column(table.schema.get_field_index(column), column,
                            pa.ListArray.from_arrays(lists.offsets, values))


def test_cell_ids_are_widened_never_cut(simulated: pa.Table, tmp_path: Path) -> None:
    """A module id beyond the default 16-bit field (a TrackML-style 8,040,015) widens
    the cellID layout, recorded in the metadata, and unpacks to the same id; ids that
    need more than 64 bits together are refused."""
    write_edm4hep([_with(simulated, "hit_module", 8_040_015)], tmp_path / "wide.root")
    with uproot.open(tmp_path / "wide.root") as f:
        layout = json.loads(f[METADATA_KEY])["cellID"]
        cells = np.concatenate(f["events"]["SVTHits.cellID"].array(library="np"))
    fields = {name: (int(o), int(w)) for name, o, w in (p.split(":")
                                                        for p in layout.split(","))}
    offset, width = fields["module"]
    assert width == (8_040_015).bit_length()
    assert set((cells >> np.uint64(offset)) & np.uint64((1 << width) - 1)) == {8_040_015}
    huge = _with(_with(simulated, "hit_module", 2**31 - 1), "hit_cell_row", 2**31 - 1)
    with pytest.raises(NpfmError, match="more than 64"):
        write_edm4hep([huge], tmp_path / "x.root")
    assert not (tmp_path / "x.root").exists()
