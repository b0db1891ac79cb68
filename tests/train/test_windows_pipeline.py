"""simulate -> pretrain -> embed of events far beyond max_hits: windows, every hit once."""

from pathlib import Path

import pyarrow.parquet as pq

from npfm.detectors.production import SimulationJob, run_job
from npfm.train.config import PretrainConfig
from npfm.train.embed import embed
from npfm.train.loop import pretrain

MAX_HITS = 128


def test_many_particle_events_are_embedded_hit_by_hit(tmp_path: Path) -> None:
    job = SimulationJob("alice", "gun", 2, seed=4, shard_events=2,
                        physics_options={"pdg": 211, "count": 20, "p_range": (0.5, 2.0)},
                        sim_options={"include_objects": False})
    manifest = run_job(job, tmp_path / "corpus")
    assert manifest["hits"] > 20 * MAX_HITS  # ALICE TPC: up to 159 pad rows per track
    config = PretrainConfig(corpora=({"path": str(tmp_path / "corpus"), "name": "gun"},),
                            size="tiny", objective="masked", batch_events=2, steps=3,
                            warmup=1, checkpoint_every=3, max_hits=MAX_HITS, objects=False)
    metrics = pretrain(config, tmp_path / "run")
    assert 0 < metrics["tokens"] <= 2 * MAX_HITS  # 2 windows per step, none over budget
    summary = embed(tmp_path / "run", tmp_path / "corpus", tmp_path / "emb", batch_events=4)
    assert summary["hits"] == summary["embedded_hits"] == manifest["hits"]
    assert summary["cut_hits"] == 0
    table = pq.read_table(tmp_path / "emb" / "part-00000.parquet")
    for row in table.to_pylist():
        n = row["n_hits"]
        assert row["hit_index"] == list(range(n))  # every hit exactly once
        assert len(row["embedding"]) == n
        windows = row["hit_window"]
        assert row["n_windows"] >= n / MAX_HITS > 10
        assert sorted(set(windows)) == list(range(row["n_windows"]))
        assert max(windows.count(w) for w in range(row["n_windows"])) <= MAX_HITS
    assert summary["windows"] == sum(table.column("n_windows").to_pylist())
