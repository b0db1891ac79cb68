"""TrackML CSV events (the challenge's file layout), written here, imported in one go."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from npfm.cli import app
from npfm.curate.pipeline import curate
from npfm.curate.recipe import load_recipe
from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.formats import trackml
from npfm.tasks.data import load_events
from npfm.tasks.metrics import trackml_score
from npfm.tasks.specs import TASKS, score_tracks

HITS = """hit_id,x,y,z,volume_id,layer_id,module_id
1,-64.4099,-7.1637,-1502.5,7,2,1
2,-55.3361,0.635342,-1502.5,7,2,1
3,-83.8305,-1.14301,-1502.5,7,2,1
4,-96.1091,-8.24103,-1502.5,7,4,15
5,-62.6736,-9.3712,-1502.5,8,2,1
6,-57.0916,-8.50101,-2954.5,12,6,2
7,-73.8369,-2.42513,-1502.5,17,14,3192
"""
CELLS = """hit_id,ch0,ch1,value
1,209,617,0.0138317
1,210,617,0.0791394
2,68,446,0.211328
3,58,954,0.259623
5,1033,1004,0.13
6,7,5,0.1
7,40,3,0.3
"""
PARTICLES = """particle_id,vx,vy,vz,px,py,pz,q,nhits
4503668346847232,-0.00928816,0.00986098,-5.68542,-0.0553821,0.323522,-0.203132,-1,8
4503737066323968,-0.00928816,0.00986098,-5.68542,-0.948492,0.470316,2.01049,1,11
"""
TRUTH = """hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight
4,0,-96.1,-8.2,-1502.5,0,0,0,0
1,4503668346847232,-64.4,-7.1,-1502.5,0.05,0.3,-0.2,0.000100049
2,4503737066323968,-55.3,0.6,-1502.5,-0.9,0.4,2.0,0.0200
3,4503668346847232,-83.8,-1.1,-1502.5,0.05,0.3,-0.2,0.0001
5,4503737066323968,-62.6,-9.3,-1502.5,-0.9,0.4,2.0,0.0300
6,4503737066323968,-57.0,-8.5,-2954.5,-0.9,0.4,2.0,0.0100
7,0,-73.8,-2.4,-1502.5,0,0,0,0
"""


def write_event(directory: Path, number: int, compress: bool = False,
                **changes: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    texts = {"hits": HITS, "cells": CELLS, "particles": PARTICLES, "truth": TRUTH, **changes}
    for kind, text in texts.items():
        name = directory / f"event{number:09d}-{kind}.csv"
        if compress:
            with gzip.open(f"{name}.gz", "wt") as fh:
                fh.write(text)
        else:
            name.write_text(text)


def test_event_maps_to_the_event_model(tmp_path: Path) -> None:
    write_event(tmp_path, 1000)
    write_event(tmp_path, 1001, compress=True)
    events = list(trackml.read_trackml(tmp_path))
    assert [e["event"] for e in events] == [1000, 1001]
    ev = events[0]
    np.testing.assert_allclose(ev["hit_x"][:2], [-6.44099, -5.53361])
    assert ev["hit_z"][5] == pytest.approx(-295.45)
    assert list(ev["hit_subsystem"]) == ["PIXEL"] * 5 + ["STRIP"] * 2
    assert list(ev["hit_layer"]) == [2, 2, 2, 4, 2, 6, 14]
    assert ev["hit_module"][6] == 17_14_3192
    assert [a.tolist() for a in trackml.split_module(ev["hit_module"][[3, 6]])] == [
        [7, 17], [4, 14], [15, 3192]]
    # hit 4 and 7 are noise (particle_id 0); truth rows are not in hit order
    assert list(ev["hit_particle"]) == [0, 1, 0, -1, 1, 1, -1]
    assert list(ev["hit_noise"]) == [False, False, False, True, False, False, True]
    assert ev["hit_cell_row"] == [210, 68, 58, None, 1033, 7, 40]  # the largest cell
    assert list(ev["hit_ext_hit_id"]) == [1, 2, 3, 4, 5, 6, 7]  # kept as an extension
    assert ev["particle_pdg"] == [None, None]
    np.testing.assert_allclose(ev["particle_vz"], [-0.568542, -0.568542])
    assert (ev["geometry_id"], ev["magnetic_field"]) == ("trackml", 2.0)
    table = events_to_table(events)
    check_table(table, "trackml")
    np.testing.assert_allclose(events[1]["hit_x"], ev["hit_x"])  # the gzip event
    weights = trackml.truth_weights(tmp_path / "event000001000-truth.csv")
    np.testing.assert_allclose(weights, [0.000100049, 0.02, 0.0001, 0, 0.03, 0.01, 0])
    np.testing.assert_allclose(ev["hit_weight"], weights)  # stored with the hits
    np.testing.assert_allclose(table.column("hit_weight")[0].as_py(), weights, rtol=1e-6)
    perfect = trackml_score(ev["hit_particle"], ev["hit_particle"], np.zeros(7, int),
                            weights=weights)
    assert perfect["per_event"][0] == pytest.approx(1.0)


def test_import_trackml_command_validates(tmp_path: Path) -> None:
    write_event(tmp_path / "d", 21)
    write_event(tmp_path / "d", 22, compress=True)
    result = CliRunner().invoke(app, ["import-trackml", str(tmp_path / "d"), "--out",
                                      str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    corpus = Corpus.open(tmp_path / "c")
    totals = corpus.validate()
    assert (totals["events"], totals["hits"], totals["particles"]) == (2, 14, 4)
    assert corpus.to_awkward(["hit_ext_hit_id"]).hit_ext_hit_id.to_list() == [
        list(range(1, 8))] * 2
    shown = CliRunner().invoke(app, ["inspect", str(tmp_path / "c")])
    assert "extension hit_ext_hit_id: TrackML hit_id of the hit" in shown.output
    bad = TRUTH.replace("0.0200\n", "nan\n", 1)
    assert bad != TRUTH
    write_event(tmp_path / "e", 23, truth=bad)
    refused = CliRunner().invoke(app, ["import-trackml", str(tmp_path / "e"), "--out",
                                       str(tmp_path / "c2")])
    assert refused.exit_code != 0
    assert "truth.csv line" in refused.output
    assert "column weight" in refused.output


def test_trackml_as_a_recipe_format(tmp_path: Path) -> None:
    write_event(tmp_path / "d", 5)
    write_event(tmp_path / "d", 6, compress=True, hits=HITS.replace("-64.4099", "-64.5"))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: t\ntitle: t\nsplits: {train: 0.5, test: 0.5}\nsources:\n"
                      '  - {name: tml, import: {format: trackml, paths: ["d/event*"],'
                      " options: {run: 3}}}\n")
    report = curate(load_recipe(recipe), tmp_path / "c")
    # all eight files are named (and recorded as inputs); each event is read once
    assert report["sources"]["tml"] == {"read": 2, "kept": 2, "quarantined": 0,
                                        "reasons": {}, "errors": []}
    assert Corpus.open(tmp_path / "c").shards[0]["inputs"] == list(range(8))


@pytest.mark.parametrize(("changes", "message"), [
    ({"hits": HITS.replace("-1502.5,7,2,1\n", "-1502.5,7,2,1\n", 1).replace(
        "-7.1637", "nan")}, r"hits.csv line 2 column y: missing, NaN or infinite"),
    ({"hits": HITS.replace(",7,2,1\n", ",3,2,1\n", 1)},
     r"hits.csv line 2 column volume_id: volume 3 is not a TrackML volume"),
    ({"hits": HITS.replace("-2954.5", "-29545000")},
     r"hits.csv line 7 column z: \|z\| = 2.9545e\+06 cm beyond 350 cm"),
    ({"truth": TRUTH.replace("\n6,4503737066323968", "\n6,77")},
     r"truth.csv line 7 column particle_id: particle_id 77 not in the particles file"),
    ({"truth": TRUTH.replace("particle_id", "pid")}, r"truth.csv: no column 'particle_id'"),
    ({"cells": CELLS.replace("\n7,40", "\n9,40")},
     r"cells.csv line 8 column hit_id: hit_id 9 not in the event's hits"),
])
def test_bad_files_name_file_line_and_column(tmp_path: Path, changes: dict[str, str],
                                             message: str) -> None:
    write_event(tmp_path, 1, **changes)
    with pytest.raises(NpfmError, match=message):
        list(trackml.read_trackml(tmp_path))


def test_no_events(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(NpfmError, match=r"no TrackML event files"):
        trackml.events(tmp_path)
    with pytest.raises(NpfmError, match=r"nothere: not found"):
        trackml.events(tmp_path / "nothere")


def test_acts_style_particles_and_truth_without_weights(tmp_path: Path) -> None:
    particles = PARTICLES.replace("q,nhits", "q,nhits,particle_type,vt").replace(
        ",-1,8\n", ",-1,8,-211,0.5\n").replace(",1,11\n", ",1,11,211,0.25\n")
    truth = "\n".join(line.rsplit(",", 1)[0] for line in TRUTH.splitlines()) + "\n"
    write_event(tmp_path, 3, particles=particles, truth=truth)
    (event,) = trackml.read_trackml(tmp_path)
    assert list(event["particle_pdg"]) == [-211, 211]
    np.testing.assert_allclose(event["particle_vt"], [0.5, 0.25])
    check_table(events_to_table([event]), "acts")
    assert "hit_weight" not in event  # no weight column: stored as null
    with pytest.raises(NpfmError, match=r"truth.csv: no column 'weight'"):
        trackml.truth_weights(tmp_path / "event000000003-truth.csv")


def test_tracking_scores_use_the_official_weights(tmp_path: Path) -> None:
    write_event(tmp_path / "d", 31)
    result = CliRunner().invoke(app, ["import-trackml", str(tmp_path / "d"), "--out",
                                      str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    (event,) = load_events(tmp_path / "c")
    weights = trackml.truth_weights(tmp_path / "d" / "event000000031-truth.csv")
    np.testing.assert_allclose(event.hit("hit_weight"), weights, rtol=1e-6)
    task = TASKS["tracking"]
    merged = np.where(event.hit("hit_particle") >= 0, 0, -1)  # both particles as one track
    scores = score_tracks(task, [event], [merged])
    assert scores["trackml_weights"] == "given"
    official = trackml_score(task.targets(event), merged, np.zeros(7, int),
                             weights=weights)["mean"]
    assert scores["trackml"]["value"] == pytest.approx(official, abs=1e-9)
    assert 0 < official < 1
