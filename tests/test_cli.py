"""The demo job and `npfm inspect` on the real ALEPH files and on a hit-level corpus."""

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from npfm.catalog.inventory import load_inventory
from npfm.cli import app
from npfm.train import checkpoint

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_import_aleph_is_reproducible(aleph_dir: Path, tmp_path: Path) -> None:
    sums = []
    for name in ("a", "b"):
        result = runner.invoke(app, ["import-aleph", str(aleph_dir), "--out",
                                     str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert "680 linked reco+truth events, 0 reco-only, 0 truth-only" in result.output
        sums.append([s["sha256"] for s in json.loads(
            (tmp_path / name / "manifest.json").read_text())["shards"]])
    assert sums[0] == sums[1]


def _micro_study(tmp_path: Path) -> Path:
    """The demo's study layout at test size: corpora named by the demo's outputs."""
    base = tmp_path / "pretrain.yaml"
    base.write_text(yaml.safe_dump({
        "corpora": [{"path": "unused"}], "size": "tiny", "objective": "knnn_leakfree", "k": 4,
        "batch_events": 4, "warmup": 1, "lr": 2e-3, "checkpoint_every": 4, "max_hits": 600}))
    study = yaml.safe_load((ROOT / "configs" / "studies-demo.yaml").read_text())
    study["pretraining"].update(base=str(base), steps=4)
    study["tasks"].update(steps=4, limit={"train": 6, "validation": 3, "test": 4})
    study["data_efficiency"].update(n_train=[2, 6])
    study["baselines"].update(finders=["hough"])
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.mark.slow
def test_demo_builds_studies_reports_and_catalogs(aleph_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--aleph-dir", str(aleph_dir), "--out", str(out), "--events", "40",
            "--recipe", str(ROOT / "recipes" / "phase1.yaml"),
            "--study", str(_micro_study(tmp_path))]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "13726 objects" in result.output  # every archive object line
    assert "objects/charged_track" in result.output
    experiments = set()
    for name in ("sphenix-pp200", "aleph-ee_z", "zeus-ep_hera", "epic-ep_eic"):
        manifest = json.loads((out / "sim" / name / "manifest.json").read_text())
        assert manifest["events"] == 40
        experiments |= {e for s in manifest["shards"] for e in s["experiments"]}
    assert experiments == {"sPHENIX", "ALEPH", "ZEUS", "ePIC"}
    for plot in ("aleph-archive.png", "sphenix-pp200.png", "pretrain-loss.png",
                 "physics-validation/physics-validation.png"):
        assert (out / plot).stat().st_size > 10_000, plot
    assert "| dedx | PASS |" in (out / "physics-validation/report.md").read_text()
    curation = json.loads((out / "phase1/curation.json").read_text())
    assert curation["totals"]["read"] == curation["totals"]["kept"] + \
        curation["totals"]["quarantined"]
    assert len(curation["sources"]) == 7
    mixed = out / "studies" / "runs" / "mixed"
    assert len((mixed / "metrics.jsonl").read_text().splitlines()) == 4
    latest = checkpoint.latest(mixed)
    assert latest is not None
    corpora = {c["name"] for c in json.loads((latest / "config.json").read_text())["corpora"]}
    assert corpora == {"sphenix", "aleph", "zeus", "epic", "archive"}
    page = (out / "report.html").read_text()
    for text in ("M1", "M2", "M3", "M4", "hough (baseline)", "data:image/png;base64,"):
        assert text in page, text
    with sqlite3.connect(out / "catalog.sqlite") as db:
        sources = dict(db.execute("select name, source from dataset").fetchall())
        inventory = [n for n, s in sources.items() if s == "inventory"]
        assert len(inventory) == len(load_inventory())  # real public datasets, metadata
        assert len(sources) - len(inventory) == 7  # archive, 4 simulated, Phase-I, lattice
        assert "phase1" in sources
        assert sources["lattice-4x4x4x4"] == "ildg"
        assert db.execute("select count(*) from checkpoint").fetchone()[0] == 4
        results = db.execute("select count(*) from benchmark_result").fetchone()[0]
    cells = (out / "studies" / "cells.jsonl").read_text().splitlines()
    assert results == len(cells) > 0
    assert "npfm portal serve --db sqlite:///" in result.output.replace("\n", "")


def test_inspect_hits_table_and_plot(corpus_dir: Path, tmp_path: Path) -> None:
    plot = tmp_path / "hits.png"
    result = runner.invoke(app, ["inspect", str(corpus_dir), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    for text in ("100 events", "hits/TPC", "hits/MVTX", "hits/INTT", "hit_pid_class"):
        assert text in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_without_data_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--aleph-dir", str(tmp_path), "--out",
                                 str(tmp_path / "c")])
    assert result.exit_code == 2
