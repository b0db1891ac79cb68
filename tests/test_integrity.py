"""Every reader of a corpus refuses what `npfm validate` refuses, with one line and exit 2.

Cases: a corrupted shard, NaN behind an updated checksum, shard paths outside the corpus,
damaged manifests and shards, duplicate entries, counts that disagree, and a pretraining
run resumed with another config.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.test_validate_cli import SHARD, _rewrite, _set_list_value
from tests.train.small_corpora import toy_hit_events, write_config, write_events
from typer.testing import CliRunner

from npfm.cli import app
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.loader import EventLoader
from npfm.events.schema import SCHEMA_METADATA_KEY
from npfm.events.shards import sha256_file
from npfm.tasks.data import load_events
from npfm.train.config import load_config
from npfm.train.loop import pretrain

runner = CliRunner()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Three shards of 6 toy sPHENIX events each."""
    return write_events(tmp_path / "corpus", [toy_hit_events(6, seed=s, run=s)
                                             for s in (1, 2, 3)])


def _manifest(corpus: Path) -> dict:
    return json.loads((corpus / "manifest.json").read_text())


def _save(corpus: Path, manifest: dict) -> None:
    (corpus / "manifest.json").write_text(json.dumps(manifest))


def _refused(*args: str, match: str) -> str:
    """Run the CLI; it must exit 2 with one line on stderr that contains ``match``."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("npfm: error:"), result.stderr
    assert match in lines[0], lines[0]
    return lines[0]


def _every_reader_refuses(corpus: Path, match: str) -> None:
    with pytest.raises(NpfmError, match=match):
        load_events(corpus)
    with pytest.raises(NpfmError, match=match):
        list(EventLoader(Corpus.open(corpus), 4, verify=False))


def _xor_middle(path: Path, n: int = 16) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + n] = bytes(b ^ 0xFF for b in data[mid:mid + n])
    path.write_bytes(bytes(data))


def test_tasks_read_through_the_verified_loader(corpus: Path) -> None:
    assert len(load_events(corpus)) == 18
    _xor_middle(corpus / SHARD)
    with pytest.raises(NpfmError, match=r"sha256 .* does not match the manifest"):
        load_events(corpus)


def test_nan_behind_an_updated_checksum_stops_tasks_and_training(corpus: Path,
                                                                  tmp_path: Path) -> None:
    _rewrite(corpus, lambda t: _set_list_value(t, "hit_x", 2, 0, float("nan")))
    _every_reader_refuses(corpus, "part-00001.parquet row 2 column hit_x: non-finite")
    config = write_config(tmp_path / "c.yaml", [(corpus, "toy")], steps=4, batch_events=6)
    _refused("pretrain", str(config), "--out", str(tmp_path / "run"), match="hit_x")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_non_finite_loss_stops_the_run_without_a_checkpoint(corpus: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from npfm.model.foundation import FoundationModel

    forward = FoundationModel.forward

    def diverging(self: FoundationModel, *args: object, **kwargs: object) -> object:
        loss, metrics = forward(self, *args, **kwargs)
        return loss * float("inf"), metrics

    monkeypatch.setattr(FoundationModel, "forward", diverging)
    config = load_config(write_config(tmp_path / "c.yaml", [(corpus, "toy")], steps=3,
                                      batch_events=3))
    with pytest.raises(NpfmError, match="step 1: non-finite loss"):
        pretrain(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("bad", ["../../other/part-00001.parquet", "/etc/passwd",
                                 "../../../../etc/passwd", "shards/../../x.parquet"])
def test_shard_paths_outside_the_corpus_are_refused(corpus: Path, bad: str) -> None:
    manifest = _manifest(corpus)
    manifest["shards"][1]["path"] = bad
    _save(corpus, manifest)
    for command in ("validate", "inspect"):
        _refused(command, str(corpus), match="shards[1].path")
    with pytest.raises(NpfmError, match="outside the corpus"):
        load_events(corpus)


def test_a_symbolic_link_out_of_the_corpus_is_refused(corpus: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.parquet"
    (corpus / SHARD).rename(outside)
    (corpus / SHARD).symlink_to(outside)
    _refused("inspect", str(corpus), match="resolves outside the corpus")


@pytest.mark.parametrize(("edit", "match"), [
    (lambda m: m.pop("shards"), "key shards: field required"),
    (lambda m: m["shards"][0].update(path=123), "key shards[0].path: input should be a "
                                                "valid string"),
    (lambda m: m["shards"][2].pop("sha256"), "key shards[2].sha256: field required"),
    (lambda m: m["shards"][0].update(events="many"), "key shards[0].events"),
    (lambda m: m.update(shards={"a": 1}), "key shards: input should be a valid list"),
])
def test_damaged_manifests_give_one_line(corpus: Path, edit, match: str) -> None:
    manifest = _manifest(corpus)
    edit(manifest)
    _save(corpus, manifest)
    for command in ("validate", "inspect"):
        _refused(command, str(corpus), match=match)


def test_a_shard_of_other_columns_is_refused_by_every_reader(corpus: Path) -> None:
    pq.write_table(pa.table({"a": [1, 2, 3]}), corpus / SHARD)
    manifest = _manifest(corpus)
    manifest["shards"][1]["sha256"] = sha256_file(corpus / SHARD)
    _save(corpus, manifest)
    _every_reader_refuses(corpus, "no npfm schema version")


def test_a_shard_missing_a_column_is_refused_by_every_reader(corpus: Path) -> None:
    _rewrite(corpus, lambda t: t.drop_columns(["hit_subsystem"]),
             metadata={SCHEMA_METADATA_KEY: b"1"})
    _every_reader_refuses(corpus, "column hit_subsystem: column missing")


def test_duplicate_shard_entries_are_refused(corpus: Path) -> None:
    manifest = _manifest(corpus)
    manifest["shards"].append(dict(manifest["shards"][0]))
    for key in ("events", "hits", "particles", "objects", "bytes"):
        manifest[key] += manifest["shards"][0][key]
    _save(corpus, manifest)
    _refused("validate", str(corpus), match="listed twice (also shards[0])")


def test_counts_are_checked_against_the_shards(corpus: Path) -> None:
    manifest = _manifest(corpus)
    manifest["events"] = 9999
    _save(corpus, manifest)
    _refused("inspect", str(corpus), match="key events: 9999 but the shard entries add up")
    manifest["shards"][1]["events"] += 9981
    _save(corpus, manifest)
    _refused("inspect", str(corpus), match="part-00001.parquet: 6 events but the manifest "
                                           "says 9987")


def test_nan_in_a_loaded_row_group_names_the_row(corpus: Path) -> None:
    _rewrite(corpus, lambda t: _set_list_value(t, "hit_y", 4, 1, float("inf")))
    with pytest.raises(NpfmError, match=r"row 4 column hit_y: non-finite value inf"):
        list(EventLoader(Corpus.open(corpus), 4))


def test_resume_with_another_config_is_refused_unless_asked(corpus: Path,
                                                            tmp_path: Path) -> None:
    other = write_events(tmp_path / "other", [toy_hit_events(6, seed=9, run=9)])
    run = tmp_path / "run"
    first = write_config(tmp_path / "a.yaml", [(corpus, "toy")], steps=2, batch_events=3,
                         checkpoint_every=2)
    pretrain(load_config(first), run)
    longer = load_config(first, steps=4)  # a longer run of the same config resumes
    pretrain(longer, run)
    changed = load_config(write_config(tmp_path / "b.yaml", [(other, "toy")], steps=6,
                                       batch_events=3, checkpoint_every=2))
    with pytest.raises(NpfmError, match="resuming at step 4 with a changed config "
                                        r"\(corpora\)"):
        pretrain(changed, run)
    pretrain(changed, run, allow_config_change=True)
    saved = json.loads((run / "checkpoints" / "step-0000006" / "config.json").read_text())
    assert saved["corpora"][0]["path"] == str(other)
    [earlier] = saved["history"]
    assert earlier["until_step"] == 4
    assert earlier["changed"] == ["corpora"]
    assert earlier["config"]["corpora"][0]["path"] == str(corpus)


def test_the_portal_event_display_reads_verified_values(corpus: Path) -> None:
    from npfm.portal.events_view import sample_events

    assert len(sample_events(str(corpus), 3)) == 3
    _rewrite(corpus, lambda t: _set_list_value(t, "hit_z", 0, 0, float("nan")))
    manifest = _manifest(corpus)
    manifest["shards"] = manifest["shards"][1:2]
    for key in ("events", "hits", "particles", "objects", "bytes"):
        manifest[key] = manifest["shards"][0][key]
    _save(corpus, manifest)
    with pytest.raises(NpfmError, match="row 0 column hit_z: non-finite"):
        sample_events(str(corpus), 3)
    _xor_middle(corpus / SHARD)
    with pytest.raises(NpfmError, match="does not match the manifest"):
        sample_events(str(corpus), 3)
