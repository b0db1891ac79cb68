"""FM4NPP / TPCpp-10M npz: corpus -> npz -> events round trip, layouts, bad files."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from npfm.detectors import simulate_events
from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.errors import NpfmError
from npfm.formats.fm4npp import TPCPP10M_INFO, read_fm4npp, write_fm4npp
from npfm.physics import generate

LABEL_COLUMNS = ("hit_track_id", "hit_pid_class", "hit_noise")


@pytest.fixture(scope="module")
def simulated() -> list[dict[str, Any]]:
    """Four sPHENIX events of eight charged pions each (MVTX, INTT and TPC hits)."""
    gen = list(generate("gun", 4, seed=3, pdg=211, count=8, p_range=(0.3, 2.0)))
    return simulate_events(gen, "sphenix", np.random.default_rng(1))


def tpc(event: dict[str, Any], column: str) -> np.ndarray:
    return np.asarray(event[column])[np.asarray(event["hit_subsystem"]) == "TPC"]


def write_npz(path: Path, sizes: list[int], **arrays: Any) -> Path:
    rng = np.random.default_rng(0)
    n = sum(sizes)
    data = np.column_stack([rng.uniform(1, 500, n), rng.uniform(20, 50, (n, 3))])
    np.savez(path, data=data.astype(np.float32), size=np.array(sizes), **arrays)
    return path


def test_corpus_round_trip(tmp_path: Path, simulated: list[dict[str, Any]],
                           make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus(tmp_path / "corpus", events_to_table(simulated), shard_events=3)
    seen: list[int] = []
    report = write_fm4npp(corpus, tmp_path / "out" / "spacepoints_000.npz",
                          progress=seen.append)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "noise_tags_000.npz", "pid_labels_000.npz", "spacepoints_000.npz", "track_ids_000.npz"]
    n_tpc = [len(tpc(e, "hit_x")) for e in simulated]
    assert (report.events, report.points, report.dropped, report.skipped) == \
        (4, sum(n_tpc), 0, 0)
    assert sum(seen) == 4
    with np.load(tmp_path / "out" / "spacepoints_000.npz") as npz:
        assert npz["data"].dtype == np.float32
        assert npz["data"].shape == (sum(n_tpc), 4)
        assert npz["size"].tolist() == n_tpc
    back = list(read_fm4npp(report.files[0], run=5, first_event=10, chunk_points=300))
    check_table(events_to_table(back), "fm4npp")
    assert [(e["run"], e["event"]) for e in back] == [(5, 10), (5, 11), (5, 12), (5, 13)]
    for original, event in zip(simulated, back, strict=True):
        for axis in ("hit_x", "hit_y", "hit_z"):
            np.testing.assert_array_equal(event[axis], tpc(original, axis).astype(np.float32))
        np.testing.assert_allclose(event["hit_edep"], tpc(original, "hit_edep"), rtol=1e-6)
        for column in (*LABEL_COLUMNS, "hit_layer"):  # layers from the pad-row radii
            np.testing.assert_array_equal(event[column], tpc(original, column))
        assert event.get("hit_particle") is None
        assert (event["experiment"], event["geometry_id"]) == ("sPHENIX", "sphenix")


def test_cap_drops_and_skips_are_reported(tmp_path: Path,
                                          simulated: list[dict[str, Any]]) -> None:
    aleph = {"facility": "LEP", "experiment": "ALEPH", "run": 1, "event": 1,
             "data_level": "simulated", "hit_x": [40.0], "hit_y": [0.0], "hit_z": [0.0],
             "hit_subsystem": ["TPC"], "hit_edep": [1e-6]}
    tables = [events_to_table(simulated), events_to_table([aleph])]
    n_tpc = [len(tpc(e, "hit_x")) for e in simulated]
    cap = sorted(n_tpc)[1]  # the two largest events exceed it
    report = write_fm4npp(tables, tmp_path / "capped.npz", labelled=False, max_points=cap,
                          compress=True)
    assert (report.dropped, report.skipped, report.events) == (2, 1, 2)
    assert report.files == (tmp_path / "capped.npz",)
    kept = [n for n in n_tpc if n <= cap]
    back = list(read_fm4npp(tmp_path / "capped.npz"))
    assert [len(e["hit_x"]) for e in back] == kept
    assert all(e.get(c) is None for e in back for c in LABEL_COLUMNS)
    with pytest.raises(NpfmError, match="already exists"):
        write_fm4npp(tables, tmp_path / "capped.npz")


def test_energy_units_and_info(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "e.npz", [2, 1])
    with np.load(path) as npz:
        e_kev = npz["data"][:, 0].astype(np.float64)
    events = list(read_fm4npp(path, energy="keV", info=TPCPP10M_INFO))
    np.testing.assert_allclose(np.concatenate([e["hit_edep"] for e in events]), e_kev * 1e-6)
    assert events[0]["sqrt_s"] == 200.0
    check_table(events_to_table(events), "info")
    adc = write_npz(tmp_path / "adc.npz", [2], track_ids=np.array([0, 1]))
    with np.load(adc) as npz:
        data = npz["data"].copy()
    data[:, 0] = [12.0, 300.0]
    np.savez(adc, data=data, size=[2])
    assert next(read_fm4npp(adc, energy="adc"))["hit_adc"].tolist() == [12, 300]
    with pytest.raises(NpfmError, match="unit 'cm'"):
        next(read_fm4npp(path, energy="cm"))


def test_label_layouts(tmp_path: Path) -> None:
    labels = {"track_ids": np.array([0, 0, -1]), "pid_labels": np.array([1, 1, 0]),
              "noise_tags": np.array([False, False, True])}
    inside = write_npz(tmp_path / "inside.npz", [3], **labels)
    beside = write_npz(tmp_path / "beside.npz", [3])
    for name, values in labels.items():
        np.save(tmp_path / f"beside_{name}.npy", values)
    for path in (inside, beside):
        event = next(read_fm4npp(path))
        assert event["hit_track_id"].tolist() == [0, 0, -1]
        assert event["hit_pid_class"].tolist() == [1, 1, 0]
        assert event["hit_noise"].tolist() == [False, False, True]


def test_streaming_matches_one_block(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "s.npz", [5, 0, 3, 7, 1], track_ids=np.arange(16))
    whole = list(read_fm4npp(path))
    seen: list[int] = []
    small = list(read_fm4npp(path, chunk_points=2, progress=seen.append))
    assert sum(seen) == 5
    assert [len(e["hit_x"]) for e in small] == [5, 0, 3, 7, 1]
    for a, b in zip(whole, small, strict=True):
        np.testing.assert_array_equal(a["hit_x"], b["hit_x"])
        np.testing.assert_array_equal(a["hit_track_id"], b["hit_track_id"])


def test_bad_files(tmp_path: Path) -> None:
    good = write_npz(tmp_path / "good.npz", [3, 4])
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "hits.npz").write_text("E,x,y,z\n1,2,3,4\n")  # a CSV under an npz name
    with np.load(good) as npz:
        data = npz["data"].copy()
    data[5, 2] = np.nan
    np.savez(tmp_path / "nan.npz", data=data, size=[3, 4])
    np.savez(tmp_path / "sizes.npz", data=np.zeros((7, 4), np.float32), size=[3, 5])
    np.savez(tmp_path / "nodata.npz", points=np.zeros((2, 4)), size=[2])
    np.savez(tmp_path / "flat.npz", data=np.zeros(8, np.float32), size=[2])
    write_npz(tmp_path / "short.npz", [2], track_ids=np.array([1]))
    write_npz(tmp_path / "pid.npz", [2], pid_labels=np.array([1, 7]))
    cases = {
        "missing.npz": "missing.npz: file not found",
        "cut.npz": r"cut.npz: truncated or corrupt \.npz",
        "hits.npz": r"hits.npz: not an \.npz file",
        "nan.npz": "nan.npz event 1 point 2: non-finite value",
        "sizes.npz": "sizes.npz: event sizes sum to 8 but `data` has 7 points",
        "nodata.npz": r"nodata.npz: no array `data` \(arrays: \['points', 'size'\]\)",
        "flat.npz": r"flat.npz: data \(8,\) float32, size \(1,\) int64: expected \(N, 4\)",
        "short.npz": r"short.npz array track_ids: shape \(1,\) int64, expected \(2,\)",
        "pid.npz": "pid.npz event 0 point 1: PID label outside 0-4",
    }
    for name, message in cases.items():
        with pytest.raises(NpfmError, match=message):
            list(read_fm4npp(tmp_path / name))


def test_unlabelled_export_refuses_null_energy(tmp_path: Path) -> None:
    event = {"facility": "RHIC", "experiment": "sPHENIX", "run": 0, "event": 0,
             "data_level": "simulated", "hit_x": [40.0], "hit_y": [0.0], "hit_z": [1.0],
             "hit_subsystem": ["TPC"]}
    table: pa.Table = events_to_table([event])
    with pytest.raises(NpfmError, match="column hit_edep: null values"):
        write_fm4npp([table], tmp_path / "x.npz", labelled=False)
    assert not (tmp_path / "x.npz").exists()
