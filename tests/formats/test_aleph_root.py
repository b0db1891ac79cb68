"""MIT ALEPH archive, ROOT form: trees written with uproot in the MIT layout, read back."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot

from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.errors import NpfmError
from npfm.formats.aleph_root import read_aleph_root
from npfm.formats.aleph_text import AlephEvent, link, read_aleph, to_event

RECO = "LEP2MCGGBBY2000E207_recons_aftercut-001.aleph"
TRUTH = "LEP2MCGGBBY2000E207_mctrue_aftercut-001.aleph"

#: Branch types of MITOpenData/e-e-_Analysis DataProcessing/include/particleData.h.
SCALARS = {"RunNo": np.int32, "EventNo": np.int32, "Energy": np.float32, "isMC": np.bool_,
           "bFlag": np.int32, "bx": np.float32, "by": np.float32, "ebx": np.float32,
           "eby": np.float32}
ARRAYS = {"px": np.float32, "py": np.float32, "pz": np.float32, "mass": np.float32,
          "charge": np.int16, "pwflag": np.int16, "pid": np.int32, "d0": np.float32,
          "z0": np.float32, "ntpc": np.int16, "nitc": np.int16, "nvdet": np.int16}


def write_mit(path: Path, trees: dict[str, list[dict[str, Any]]]) -> Path:
    """Trees in the MIT layout: scalars, and per-particle arrays counted by nParticle.

    Each event is a mapping of branch name to a scalar or a list; branches absent from
    the first event are not written.
    """
    with uproot.recreate(path) as f:
        for name, events in trees.items():
            data: dict[str, Any] = {}
            for key, dtype in SCALARS.items():
                if key in events[0]:
                    data[key] = np.array([e[key] for e in events], dtype=dtype)
            particles = {key: ak.values_astype(ak.Array([e[key] for e in events]), dtype)
                         for key, dtype in ARRAYS.items() if key in events[0]}
            data["p"] = ak.zip(particles)
            tree = f.mktree(name, {k: (v.type.content if k == "p" else v.dtype)
                                   for k, v in data.items()},
                            field_name=lambda outer, inner: inner,
                            counter_name=lambda counted: "nParticle")
            tree.extend(data)
    return path


def mit_event(run: int, event: int, **arrays: list[Any]) -> dict[str, Any]:
    return {"RunNo": run, "EventNo": event, "Energy": 91.25, "isMC": True, **arrays}


RECO_EVENTS = [
    mit_event(14209, 4218, bFlag=4, bx=-0.0855, by=0.0485, ebx=0.0057, eby=0.0,
              px=[0.001, 3.001, -12.345], py=[0.150, -2.409, 0.5], pz=[-0.126, -2.398, 1.0],
              mass=[0.140, 0.140, 0.0], charge=[-1, 1, 0], pwflag=[0, 2, 4],
              pid=[-999, -999, -999], d0=[0.051, -0.013, -999.0], z0=[-0.359, -0.393, -999.0],
              ntpc=[4, 21, 0], nitc=[7, 5, 0], nvdet=[2, 2, 0]),
    mit_event(14209, 4219, bFlag=-999, bx=-999.0, by=-999.0, ebx=-999.0, eby=-999.0,
              px=[1.0, 2.0], py=[0.0, 0.1], pz=[3.0, 0.2], mass=[0.140, 0.0],
              charge=[1, 0], pwflag=[0, 5], pid=[-999, -999], d0=[0.02, -999.0],
              z0=[0.1, -999.0], ntpc=[10, -999], nitc=[3, -127], nvdet=[1, -127]),
]
TRUTH_EVENTS = [
    mit_event(14209, 4218, px=[0.5, -0.2], py=[0.1, 0.3], pz=[2.0, 0.0],
              mass=[0.140, 0.0], charge=[1, 0], pwflag=[0, 4], pid=[8, 1]),
    mit_event(14209, 4219, px=[1.0], py=[0.0], pz=[3.0], mass=[0.140], charge=[1],
              pwflag=[0], pid=[-999]),
]


@pytest.fixture
def mit_file(tmp_path: Path) -> Path:
    before = [*TRUTH_EVENTS, mit_event(14209, 4220, px=[0.1], py=[0.1], pz=[0.1],
                                       mass=[0.0], charge=[0], pwflag=[4], pid=[1])]
    return write_mit(tmp_path / "mit.root",
                     {"t": RECO_EVENTS, "tgen": TRUTH_EVENTS, "tgenBefore": before})


def test_known_values_sentinels_and_linking(mit_file: Path) -> None:
    stats: dict[str, int] = {}
    seen: list[int] = []
    events = list(read_aleph_root(mit_file, step_size=1, stats=stats, progress=seen.append))
    assert stats == {"linked": 2, "reco_only": 0, "truth_only": 0}
    assert sum(seen) == 2
    first, second = events
    assert (first["run"], first["event"], first["data_level"]) == (14209, 4218, "simulated")
    assert first["sqrt_s"] == pytest.approx(91.25)
    assert first["vertex_x"] == pytest.approx(-0.0855)
    assert "vertex_x" not in second  # bFlag -999: no vertex line in the source
    assert first["object_type"] == ["charged_track", "muon", "photon"]
    np.testing.assert_allclose(first["object_px"], [0.001, 3.001, -12.345], rtol=1e-6)
    assert first["object_d0"][:2] == pytest.approx([0.051, -0.013])
    assert first["object_d0"][2] is None  # -999
    assert first["object_z0"][2] is None
    assert first["subsystems"] == ["TPC", "ITC", "VDET"]
    assert first["object_nhits"].tolist() == [[4, 7, 2], [21, 5, 2], [0, 0, 0]]
    assert "object_nhits" not in second  # ntpc -999 / nitc -127: counts not recorded
    assert first["particle_pdg"] == [211, 22]  # GEANT3 codes 8, 1
    assert second["particle_pdg"] == [None]  # pid -999
    check_table(events_to_table(events), "mit")


def test_single_trees_and_data_files(mit_file: Path, tmp_path: Path) -> None:
    truth = list(read_aleph_root(mit_file, reco_tree=None, truth_tree="tgenBefore"))
    assert [e["event"] for e in truth] == [4218, 4219, 4220]
    assert all("object_px" not in e for e in truth)
    data = [{**e, "isMC": False} for e in RECO_EVENTS]
    path = write_mit(tmp_path / "data.root", {"t": data})
    events = list(read_aleph_root(path, truth_tree=None))
    assert {e["data_level"] for e in events} == {"real-archived"}
    check_table(events_to_table(events), "data")


def _mit_from_block(block: AlephEvent) -> dict[str, Any]:
    """An MIT tree entry with the columns the text block has (as scan.cc reads them)."""
    keys = {"px": "px", "py": "py", "pz": "pz", "mass": "m", "charge": "charge",
            "pwflag": "pwflag", "pid": "pid"}
    present = {b: k for b, k in keys.items() if block.rows and all(k in r for r in block.rows)}
    return {"RunNo": block.run, "EventNo": block.event, "Energy": block.ecm,
            "isMC": block.kind != "ALEPH_DATA",
            **{b: [r[k] for r in block.rows] for b, k in present.items()}}


def test_cross_check_with_text_importer(aleph_dir: Path, tmp_path: Path) -> None:
    stats = {"linked": 0, "reco_only": 0, "truth_only": 0}
    pairs = list(itertools.islice(link(read_aleph(aleph_dir / RECO),
                                       read_aleph(aleph_dir / TRUTH), stats), 20))
    path = write_mit(tmp_path / "real.root",
                     {"t": [_mit_from_block(r) for r, _ in pairs if r is not None],
                      "tgen": [_mit_from_block(t) for _, t in pairs if t is not None]})
    from_root = list(read_aleph_root(path, step_size=7))
    from_text = [to_event(r, t) for r, t in pairs]
    assert len(from_root) == len(from_text) == 20
    for got, want in zip(from_root, from_text, strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, np.ndarray):  # float32 in the ROOT file
                np.testing.assert_allclose(got[key], value, rtol=1e-6, atol=1e-7)
            elif isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-6)
            else:
                assert got[key] == value, key
    check_table(events_to_table(from_root), "cross-check")


def test_bad_input(mit_file: Path, tmp_path: Path) -> None:
    with pytest.raises(NpfmError, match="file not found"):
        list(read_aleph_root(tmp_path / "missing.root"))
    text = tmp_path / "text.root"
    text.write_text("MC_RECO RUN = 1 EVENT 2 ECM = 91.2 GEV\n" * 10)
    with pytest.raises(NpfmError, match="not a ROOT file"):
        list(read_aleph_root(text))
    cut = tmp_path / "cut.root"
    cut.write_bytes(mit_file.read_bytes()[: mit_file.stat().st_size // 2])
    with pytest.raises(NpfmError, match="truncated") as info:
        list(read_aleph_root(cut))
    assert str(cut) in str(info.value)
    only_reco = write_mit(tmp_path / "reco.root", {"t": RECO_EVENTS})
    with pytest.raises(NpfmError, match=r"no tree 'tgen' \(the file holds \['t'\]\)"):
        list(read_aleph_root(only_reco))
    no_flag = write_mit(tmp_path / "noflag.root", {"t": [
        {k: v for k, v in e.items() if k != "pwflag"} for e in RECO_EVENTS]})
    with pytest.raises(NpfmError, match=r"noflag.root tree t: no branch 'pwflag'"):
        list(read_aleph_root(no_flag, truth_tree=None))
    nan = [RECO_EVENTS[0], {**RECO_EVENTS[1], "px": [1.0, float("nan")]}]
    with pytest.raises(NpfmError, match=r"tree t branch px entry 1: non-finite value nan"):
        list(read_aleph_root(write_mit(tmp_path / "nan.root", {"t": nan}), truth_tree=None))
    rng = np.random.default_rng(1)
    many = [mit_event(1, i, px=rng.normal(size=20).tolist(), py=[0.0] * 20, pz=[0.0] * 20,
                      mass=[0.1] * 20, charge=[1] * 20, pwflag=[0] * 20) for i in range(2000)]
    damaged = bytearray(write_mit(tmp_path / "many.root", {"t": many}).read_bytes())
    damaged[len(damaged) // 2:len(damaged) // 2 + 4000] = bytes(4000)  # inside a basket
    (tmp_path / "damaged.root").write_bytes(damaged)
    with pytest.raises(NpfmError, match=r"damaged.root tree t: cannot read branches"):
        list(read_aleph_root(tmp_path / "damaged.root", truth_tree=None))
    ntuple = tmp_path / "rntuple.root"
    with uproot.recreate(ntuple) as f:
        f["t"] = {"RunNo": np.array([1], np.int32)}
    with pytest.raises(NpfmError, match="not a TTree"):
        list(read_aleph_root(ntuple, truth_tree=None))
