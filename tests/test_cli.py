"""The demo job and `npfm inspect` on the real ALEPH files and on a hit-level corpus."""

from pathlib import Path

from typer.testing import CliRunner

from npfm.cli import app

runner = CliRunner()


def test_demo_builds_validates_and_summarises(aleph_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--aleph-dir", str(aleph_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "680 linked reco+truth events" in result.output
    assert "OK" in result.output
    assert "13726 objects" in result.output
    assert "objects/charged_track" in result.output
    assert (tmp_path / "demo-per-event.png").stat().st_size > 10_000
    # Running it again rebuilds the corpus from scratch and gives the same shards.
    first = (out / "manifest.json").read_text()
    again = runner.invoke(app, ["demo", "--aleph-dir", str(aleph_dir), "--out", str(out)])
    assert again.exit_code == 0
    assert _shard_sums(first) == _shard_sums((out / "manifest.json").read_text())


def _shard_sums(manifest: str) -> list[str]:
    import json

    return [s["sha256"] for s in json.loads(manifest)["shards"]]


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
