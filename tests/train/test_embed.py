"""Frozen per-hit embeddings from a tiny pretrained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from npfm.events.build import events_to_table
from npfm.events.errors import NpfmError
from npfm.events.metadata import Citation, Provenance
from npfm.events.sample import sample_events
from npfm.events.writer import CorpusWriter
from npfm.train.config import PretrainConfig
from npfm.train.embed import embed
from npfm.train.loop import pretrain

MAX_HITS = 200


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 toy events in 3 shards, alternately train and test; some exceed MAX_HITS."""
    events = sample_events(20, seed=11, mean_tracks=3.0)
    for i, event in enumerate(events):
        event["split"] = "train" if i % 2 == 0 else "test"
        event["geometry_id"] = "sphenix"
    path = tmp_path_factory.mktemp("embed") / "corpus"
    with CorpusWriter(path, name="toy", citation=Citation(title="toy"),
                      provenance=Provenance(command="pytest"), shard_events=7) as writer:
        writer.write(events_to_table(events))
    return path


@pytest.fixture(scope="module")
def run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = PretrainConfig(corpora=({"path": str(corpus), "name": "toy"},), size="tiny",
                            objective="knnn_leakfree", k=4, batch_events=4, steps=3,
                            warmup=1, checkpoint_every=3, max_hits=MAX_HITS)
    path = tmp_path_factory.mktemp("embed") / "run"
    pretrain(config, path)
    return path


def _table(out: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(out.glob("part-*.parquet")))


def _n_hits(corpus: Path, split: str | None) -> dict[tuple[int, int], int]:
    table = pq.read_table(corpus / "shards", columns=["run", "event", "split", "hit_x"])
    return {(r["run"], r["event"]): len(r["hit_x"]) for r in table.to_pylist()
            if split is None or r["split"] == split}


def test_embeddings_of_a_split(tmp_path: Path, corpus: Path, run: Path) -> None:
    summary = embed(run, corpus, tmp_path / "emb", split="test", batch_events=3)
    table = _table(tmp_path / "emb")
    expected = _n_hits(corpus, "test")
    assert table.num_rows == len(expected) == summary["events"] == 10
    assert summary == json.loads((tmp_path / "emb" / "embeddings.json").read_text())
    assert summary["dimension"] == 32
    assert summary["split"] == "test"
    assert len(summary["checkpoint"]["model_sha256"]) == 64
    # A run without cells: hit columns only, as before cells could be embedded.
    assert table.column_names == ["run", "event", "n_hits", "n_windows", "hit_index",
                                  "hit_window", "embedding"]
    assert summary["cells"] is False
    assert summary["cell_columns"] == []
    assert summary["n_cells"] is None
    assert summary["embedded_cells"] is None
    split_events = 0
    for row in table.to_pylist():
        n = expected[(row["run"], row["event"])]
        assert row["n_hits"] == n
        assert row["hit_index"] == list(range(n))  # every hit, none cut
        windows = row["hit_window"]
        assert sorted(set(windows)) == list(range(row["n_windows"]))
        assert max(windows.count(w) for w in set(windows)) <= MAX_HITS
        split_events += row["n_windows"] > 1
        emb = np.array(row["embedding"], dtype=np.float32)
        assert emb.shape == (n, 32)
        assert np.isfinite(emb).all()
    assert summary["cut_hits"] == 0
    assert split_events > 0
    assert summary["windows"] == sum(table.column("n_windows").to_pylist())


def test_all_layers_mix_and_batch_independence(tmp_path: Path, corpus: Path,
                                               run: Path) -> None:
    embed(run, corpus, tmp_path / "all", layers="all", batch_events=8)
    alone = _table(tmp_path / "all")
    # The token embedding, then the tiny model's two blocks.
    assert [c for c in alone.column_names if c.startswith("layer_")] == ["layer_00",
                                                                        "layer_01",
                                                                        "layer_02"]
    assert alone.num_rows == 20
    embed(run, corpus, tmp_path / "one", layers="all", batch_events=1)
    embed(run, corpus, tmp_path / "again", layers="all", batch_events=8)
    assert _table(tmp_path / "again").equals(alone)  # deterministic
    single = _table(tmp_path / "one")
    assert single.column("hit_index").equals(alone.column("hit_index"))
    for name in ("layer_00", "layer_01", "layer_02"):
        a = np.array(alone.column(name).combine_chunks().flatten().flatten())
        b = np.array(single.column(name).combine_chunks().flatten().flatten())
        # float32 features differ by an ulp between batch sizes (vectorised tails), which
        # the Fourier frequencies amplify to ~1e-4; leakage between events would be O(1).
        np.testing.assert_allclose(a, b, atol=5e-4, rtol=0)
    embed(run, corpus, tmp_path / "mix", layers="mix", batch_events=8)
    mix = np.array(_table(tmp_path / "mix").column("embedding").combine_chunks()
                   .flatten().flatten())
    layers = [np.array(alone.column(n).combine_chunks().flatten().flatten())
              for n in ("layer_00", "layer_01", "layer_02")]
    np.testing.assert_allclose(mix, np.mean(layers, axis=0), atol=1e-6)


def test_bad_arguments(tmp_path: Path, corpus: Path, run: Path) -> None:
    with pytest.raises(NpfmError, match="unknown layer mode"):
        embed(run, corpus, tmp_path / "x", layers="first")
    with pytest.raises(NpfmError, match="unknown split"):
        embed(run, corpus, tmp_path / "x", split="dev")
    with pytest.raises(NpfmError, match="no checkpoint"):
        embed(tmp_path, corpus, tmp_path / "x")
