"""ALEPH pwflag: the truth flag kept uninterpreted (particle_ext_pwflag), the reco flag read
as the energy-flow type, both checked on the shared MIT ALEPH files (docs/formats.md)."""

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from npfm.curate.pipeline import curate
from npfm.curate.recipe import load_recipe
from npfm.events.build import events_to_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.formats.aleph_text import AlephEvent, read_archive, to_event

ALEPH_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "aleph"
#: Largest angle, degrees, between a reconstructed object and its truth match.
MATCH_DEG = 2.0


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    if not ALEPH_DIR.is_dir():
        pytest.skip(f"real ALEPH files not found at {ALEPH_DIR} (shared/ is absent)")
    return list(read_archive(sorted(ALEPH_DIR.glob("*.aleph"))))


def test_truth_pwflag_stored_as_given(events: list[dict[str, Any]]) -> None:
    pairs = Counter((int(f), abs(p) if p is not None else None) for e in events
                    for f, p in zip(e["particle_ext_pwflag"], e["particle_pdg"], strict=True))
    by_flag: dict[int, Counter[int | None]] = {}
    for (flag, pdg), n in pairs.items():
        by_flag.setdefault(flag, Counter())[pdg] += n
    assert by_flag[1] == {13: 387}  # truth 1: muons only
    assert by_flag[2] == {11: 2693}  # truth 2: electrons only
    assert set(by_flag[-11]) == {12, 14, 16, None}  # neutrinos (None: GEANT3 "nu")
    assert sum(by_flag[-11].values()) == 724
    table = events_to_table(events[:3])
    assert table.schema.field("particle_ext_pwflag").metadata[b"npfm.description"].startswith(
        b"pwflag of the MIT ALEPH truth line")


def _matches(event: dict[str, Any]) -> list[tuple[str, int | None]]:
    """(object type, PDG id of the closest same-charge truth particle within MATCH_DEG)
    of each charged reconstructed object."""
    truth = np.stack([event["particle_px"], event["particle_py"], event["particle_pz"]], 1)
    charge = np.asarray(event["particle_charge"])
    out = []
    for i, kind in enumerate(event["object_type"]):
        q = event["object_charge"][i]
        p = np.array([event["object_px"][i], event["object_py"][i], event["object_pz"][i]])
        same = np.flatnonzero(charge == q)
        if q == 0 or not len(same):
            continue
        cos = truth[same] @ p / np.linalg.norm(truth[same], axis=1) / np.linalg.norm(p)
        j = same[int(np.argmax(cos))]
        close = np.degrees(np.arccos(min(1.0, float(cos.max())))) < MATCH_DEG
        out.append((kind, event["particle_pdg"][j] if close else None))
    return out


def test_reco_pwflag_is_the_energy_flow_type(events: list[dict[str, Any]]) -> None:
    found: dict[str, Counter[int | None]] = {}
    for event in events:
        for kind, pdg in _matches(event):
            found.setdefault(kind, Counter())[abs(pdg) if pdg is not None else None] += 1
    electrons, muons = found["electron"], found["muon"]
    # The reverse (truth) convention would give electrons muon matches and vice versa.
    assert (sum(electrons.values()), electrons[11], electrons[13]) == (361, 237, 2)
    assert (sum(muons.values()), muons[13], muons[11]) == (221, 176, 0)
    tracks = found["charged_track"]
    assert (sum(tracks.values()), tracks[11], tracks[13]) == (8567, 98, 75)


def test_fractional_truth_pwflag_is_refused() -> None:
    block = AlephEvent("MC_TRUE_AFTER_CUT", 1, 2, 91.2, rows=[
        {"px": 1.0, "py": 0.0, "pz": 0.0, "m": 0.1, "charge": 1.0, "pwflag": 1.5}])
    with pytest.raises(NpfmError, match=r"run 1 event 2: truth pwflag 1\.5 is not a whole"):
        to_event(None, block)


def test_curation_mixing_aleph_and_a_hit_table_keeps_both(aleph_dir: Path,
                                                          tmp_path: Path) -> None:
    (tmp_path / "hits.csv").write_text("evt,x,y,z,vol\n0,10,0,5,7\n0,20,0,9,8\n1,15,1,3,9\n")
    (tmp_path / "map.yaml").write_text(
        "hits:\n  file: hits.csv\n  columns: {event: evt, x: x, y: y, z: z}\n"
        "  units: {x: cm, y: cm, z: cm}\n  subsystem: PIXEL\n"
        "  extra_columns: {volume_id: vol}\n"
        "event: {facility: LHC, experiment: TrackML, data_level: simulated}\n")
    (tmp_path / "r.yaml").write_text(
        "name: mix\ntitle: t\nsplits: {train: 0.5, test: 0.5}\nsources:\n"
        f"  - {{name: aleph, import: {{format: aleph_text, paths: ['{aleph_dir}/*.aleph'],"
        " max_events: 20}}\n"
        "  - {name: dump, import: {format: hit_table, paths: [map.yaml]}}\n")
    report = curate(load_recipe(tmp_path / "r.yaml"), tmp_path / "c")
    assert report["totals"] == {"read": 22, "kept": 22, "quarantined": 0}
    corpus = Corpus.open(tmp_path / "c")
    assert corpus.validate()["events"] == 22
    assert set(corpus.extensions) == {"particle_ext_pwflag", "hit_ext_volume_id"}
    data = corpus.to_awkward()
    aleph = data[data.experiment == "ALEPH"]
    dump = data[data.experiment == "TrackML"]
    assert aleph.particle_ext_pwflag[0].to_list()[:3] == [2, 2, 0]  # e-, e+, pi+
    assert dump.hit_ext_volume_id.to_list() == [[7, 8], [9]]
    assert dump.particle_ext_pwflag.to_list() == [None, None]
    assert aleph.hit_ext_volume_id.to_list() == [None] * 20
