"""The demo job and `npfm inspect` on the real ALEPH files and on a hit-level corpus."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npfm.cli import app

runner = CliRunner()


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


@pytest.mark.slow
def test_demo_builds_validates_and_summarises(aleph_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "phase1.yaml"
    config = Path(__file__).resolve().parents[1] / "configs" / "pretrain-tiny.yaml"
    args = ["demo", "--aleph-dir", str(aleph_dir), "--out", str(out), "--events", "20",
            "--recipe", str(recipe), "--pretrain-config", str(config), "--pretrain-steps", "12"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "13726 objects" in result.output  # every archive object line
    assert "objects/charged_track" in result.output
    mixed = json.loads((out / "mixed-sim/manifest.json").read_text())
    assert mixed["events"] == 80
    assert {e for s in mixed["shards"] for e in s["experiments"]} == {
        "sPHENIX", "ALEPH", "ZEUS", "ePIC"}
    for plot in ("aleph-archive.png", "mixed-sim.png", "physics-validation/"
                 "physics-validation.png"):
        assert (out / plot).stat().st_size > 10_000, plot
    assert "| dedx | PASS |" in (out / "physics-validation/report.md").read_text()
    curation = json.loads((out / "phase1/curation.json").read_text())
    assert curation["totals"]["read"] == curation["totals"]["kept"] + \
        curation["totals"]["quarantined"]
    assert len(curation["sources"]) == 7
    assert len((out / "pretrain-tiny/metrics.jsonl").read_text().splitlines()) == 12
    assert (out / "pretrain-loss.png").stat().st_size > 10_000


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
