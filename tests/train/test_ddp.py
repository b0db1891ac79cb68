"""A real two-process DDP pretraining run on the CPU (gloo) under torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from npfm.events.build import events_to_table
from npfm.events.metadata import Citation, Provenance
from npfm.events.sample import sample_events
from npfm.events.writer import CorpusWriter

STEPS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _corpus(path: Path) -> Path:
    """16 toy events in 4 shards, so each rank reads two."""
    events = sample_events(16, seed=5, mean_tracks=3.0)
    for event in events:
        event["geometry_id"] = "sphenix"
    with CorpusWriter(path, name="toy", citation=Citation(title="toy"),
                      provenance=Provenance(command="pytest"), shard_events=4) as writer:
        writer.write(events_to_table(events))
    return path


def test_two_process_ddp_run(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "corpora": [{"path": str(corpus), "name": "toy"}], "size": "tiny",
        "objective": "knnn_leakfree", "k": 4, "batch_events": 2, "steps": STEPS,
        "warmup": 1, "checkpoint_every": 2, "max_hits": 200}))
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
         "-m", "npfm", "pretrain", str(config), "--out", str(run)],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == list(range(1, STEPS + 1))  # rank 0 logs only
    assert all(m["loss"] > 0 for m in lines)
    latest = run / "checkpoints" / (run / "checkpoints" / "latest").read_text()
    assert latest.name == f"step-{STEPS:07d}"
    assert (latest / "model.safetensors").is_file()
