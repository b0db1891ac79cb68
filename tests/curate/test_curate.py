"""`npfm curate`: quality checks, quarantine accounting, stable splits, resume."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from npfm.curate import quality
from npfm.curate.pipeline import curate
from npfm.curate.recipe import load_recipe
from npfm.curate.splits import assign_splits, content_hashes
from npfm.events.build import events_to_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.sample import sample_events

REPO = Path(__file__).resolve().parents[2]
SHARED_ALEPH = REPO.parent / "shared" / "data" / "aleph"
LINE = "px= {px} py= 0.1 pz= 0.2 m= 0.140 charge 1.0 pwflag 0"


def _aleph(path: Path, blocks: list[list[str]], end: bool = True) -> Path:
    lines = []
    for i, objects in enumerate(blocks):
        lines += [f"MC_RECO RUN = 1 EVENT {i} ECM = 91.2 GEV", *objects, "END_EVENT"]
    path.write_text("\n".join([*lines, "END_FILE"] if end else lines) + "\n")
    return path


def _recipe(tmp: Path, sources: str, chunk: int = 500) -> Path:
    path = tmp / "recipe.yaml"
    path.write_text(f"name: t\ntitle: test\nsplits: {{train: 0.8, validation: 0.1, test: 0.1}}"
                    f"\nchunk_events: {chunk}\nsources:\n{sources}")
    return path


def test_quality_checks_name_the_problem() -> None:
    events = sample_events(6, seed=3)
    for ev in events:
        ev["geometry_id"] = "sphenix"
    events[1]["hit_x"] = events[1]["hit_x"] * 10  # mm taken for cm
    events[2]["hit_pid_class"] = events[2]["hit_pid_class"].copy()
    events[2]["hit_pid_class"][0] = (events[2]["hit_pid_class"][0] + 1) % 5
    events[3]["hit_y"] = events[3]["hit_y"].copy()
    events[3]["hit_y"][4] = np.nan
    events[4].update({k: None for k in events[4] if k.startswith(("hit_", "particle_"))})
    table = events_to_table(events)
    reasons = quality.first_reason(quality.schema_reasons(table), quality.empty_reasons(table),
                                   quality.envelope_reasons(table),
                                   quality.label_reasons(table))
    assert reasons[0] is None
    assert reasons[5] is None
    assert reasons[1].startswith("hit outside the sphenix envelope")
    assert reasons[2] == "labels: 1 hit(s) whose PID class or noise tag contradicts the truth"
    assert reasons[3] == "schema: hit_y: non-finite value nan"
    assert reasons[4] == "empty event: no hits, objects or particles"


def test_splits_depend_only_on_content() -> None:
    table = events_to_table(sample_events(300, seed=5))
    hashes = content_hashes(table)
    assert len(set(hashes)) == 300
    splits = assign_splits(hashes, {"train": 0.8, "validation": 0.1, "test": 0.1})
    assert assign_splits(hashes[::-1], {"train": 0.8, "validation": 0.1, "test": 0.1}) == \
        splits[::-1]
    counts = {s: splits.count(s) for s in ("train", "validation", "test")}
    assert 200 < counts["train"] < 280
    assert counts["validation"] > 10
    assert counts["test"] > 10
    renumbered = events_to_table(sample_events(3, seed=5)).to_pylist()
    renumbered[0]["event"], renumbered[0]["run"] = 999, 7  # bookkeeping is not content
    assert content_hashes(events_to_table(renumbered))[0] == hashes[0]


def test_quarantine_accounts_for_every_record(tmp_path: Path) -> None:
    good = [LINE.format(px=i + 1.0) for i in range(3)]
    _aleph(tmp_path / "a.aleph", [good, good, [], [LINE.format(px="nan")], good[:1]])
    recipe = _recipe(tmp_path, '  - {name: archive, import: {format: aleph_text, '
                     'paths: ["a.aleph"]}}\n  - {name: sim, simulate: {detector: aleph, '
                     'physics: ee_z, events: 20, seed: 4}}\n')
    report = curate(load_recipe(recipe), tmp_path / "c")
    archive = report["sources"]["archive"]
    assert archive == {"read": 5, "kept": 2, "quarantined": 3, "errors": [],
                       "reasons": {"duplicate": 1, "empty event": 1, "schema": 1}}
    assert report["totals"] == {"read": 25, "kept": 22, "quarantined": 3}
    q = pq.read_table(tmp_path / "c/quarantine/part-00000.parquet").to_pylist()
    assert [r["quarantine_index"] for r in q] == [1, 2, 3]
    assert q[0]["quarantine_reason"].startswith("duplicate: same content as an earlier event")
    assert q[2]["object_px"][0] != q[2]["object_px"][0]  # the NaN record itself is kept
    corpus = Corpus.open(tmp_path / "c")
    assert corpus.validate()["events"] == 22
    assert "curation" in corpus.manifest["files"]
    splits = {s for e in corpus.shards for s in e["splits"]}
    assert splits <= {"train", "validation", "test"}


def test_bad_input_stops_or_is_recorded_with_keep_going(tmp_path: Path) -> None:
    good = [LINE.format(px=1.0)]
    _aleph(tmp_path / "t.aleph", [good, [LINE.format(px=2.0)]], end=False)  # truncated
    recipe = _recipe(tmp_path, '  - {name: broken, import: {format: aleph_text, '
                     'paths: ["t.aleph"]}}\n  - {name: sim, simulate: {detector: opal, '
                     'physics: ee_z, events: 10, seed: 2}}\n')
    with pytest.raises(NpfmError, match=r"t.aleph: file ends without END_FILE"):
        curate(load_recipe(recipe), tmp_path / "stop")
    assert not (tmp_path / "stop/manifest.json").exists()
    report = curate(load_recipe(recipe), tmp_path / "go", keep_going=True)
    broken = report["sources"]["broken"]
    assert broken["read"] == 2
    assert broken["kept"] == 2
    assert "file ends without END_FILE (truncated)" in broken["errors"][0]
    assert report["sources"]["sim"]["kept"] == 10
    Corpus.open(tmp_path / "go").validate()


def test_recipe_errors_name_the_key(tmp_path: Path) -> None:
    cases = {
        "splits: {train: 0.5, test: 0.1}": "splits",
        "splits: {train: 0.9, dev: 0.1}": "splits",
    }
    for splits, key in cases.items():
        path = tmp_path / "r.yaml"
        path.write_text(f"name: t\ntitle: t\n{splits}\nsources: []\n")
        with pytest.raises(NpfmError, match=rf"r.yaml {key}: .* summing to 1"):
            load_recipe(path)
    bad = _recipe(tmp_path, '  - {name: x, import: {format: root6, paths: ["*.root"]}}\n')
    with pytest.raises(NpfmError, match=r"sources\[0\].import.format: unknown format 'root6'"):
        load_recipe(bad)
    missing = _recipe(tmp_path, '  - {name: x, import: {format: aleph_text, paths: ['
                      '"none/*.aleph"]}}\n')
    with pytest.raises(NpfmError, match="matches no file; fix: paths are relative"):
        load_recipe(missing)


@pytest.mark.slow
def test_phase1_small_build_validates_and_adds_up(tmp_path: Path) -> None:
    if not SHARED_ALEPH.is_dir():
        pytest.skip(f"real ALEPH files not found at {SHARED_ALEPH} (shared/ is absent)")
    report = curate(load_recipe(REPO / "recipes/phase1.yaml", scale=0.005), tmp_path / "p")
    assert len(report["sources"]) == 7
    for source in report["sources"].values():
        assert source["read"] == source["kept"] + source["quarantined"]
    assert report["sources"]["aleph-archive"]["read"] == 680
    corpus = Corpus.open(tmp_path / "p")
    assert corpus.validate()["events"] == report["totals"]["kept"]
    experiments = {e for s in corpus.shards for e in s["experiments"]}
    assert experiments == {"sPHENIX", "ALEPH", "DELPHI", "OPAL", "ZEUS", "ePIC"}


def _splits(path: Path) -> dict[str, str]:
    out = {}
    for shard in sorted((path / "shards").glob("*.parquet")):
        table = pq.read_table(shard)
        out.update(zip(content_hashes(table), table.column("split").to_pylist(), strict=True))
    return out


def test_splits_stay_stable_when_the_corpus_grows(tmp_path: Path) -> None:
    """Growth by whole chunks (more simulated chunks, more imported events) keeps every
    existing event, its hash and its split."""
    _aleph(tmp_path / "a.aleph", [[LINE.format(px=i + 0.5)] for i in range(60)])
    sizes = {}
    for name, (events, limit) in {"small": (40, 25), "large": (100, 60)}.items():
        recipe = _recipe(tmp_path, f"  - {{name: sim, simulate: {{detector: aleph, physics: "
                         f"ee_z, events: {events}, seed: 3}}}}\n  - {{name: arc, import: "
                         f'{{format: aleph_text, paths: ["a.aleph"], max_events: {limit}}}}}\n',
                         chunk=20)
        curate(load_recipe(recipe), tmp_path / name)
        sizes[name] = _splits(tmp_path / name)
    before, after = sizes["small"], sizes["large"]
    assert len(before) == 65
    assert len(after) == 160
    assert before.keys() <= after.keys()
    assert all(after[h] == split for h, split in before.items())


def test_killed_curation_resumes_identically(tmp_path: Path,
                                             kill_after_shards: Callable[..., Path]) -> None:
    recipe = _recipe(tmp_path, '  - {name: a, simulate: {detector: aleph, physics: ee_z, '
                     'events: 120, seed: 9}}\n', chunk=15)
    args = [sys.executable, "-m", "npfm", "curate", str(recipe)]
    out = tmp_path / "killed"
    kill_after_shards(["curate", str(recipe)], out)
    for target in (out, tmp_path / "whole"):
        result = subprocess.run([*args, "--out", str(target)], capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr
    manifests = [json.loads((p / "manifest.json").read_text()) for p in (out, tmp_path / "whole")]
    assert [s["sha256"] for s in manifests[0]["shards"]] == \
        [s["sha256"] for s in manifests[1]["shards"]]
    assert json.loads((out / "curation.json").read_text()) == \
        json.loads((tmp_path / "whole/curation.json").read_text())
