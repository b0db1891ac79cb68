"""Small corpora for pretraining tests: toy hit events and real ALEPH archive events,
which carry reconstructed objects only."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from npfm.events.build import events_to_table
from npfm.events.metadata import Citation, Provenance
from npfm.events.sample import sample_events
from npfm.events.writer import CorpusWriter
from npfm.formats.aleph_text import read_archive

ALEPH_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "aleph"
ALEPH_RECO = "LEP2MCGGBBY2000E207_recons_aftercut-001.aleph"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def aleph_object_events(n: int) -> list[dict[str, Any]]:
    """The first ``n`` events of the real ALEPH archive file (objects, no hits)."""
    if not ALEPH_DIR.is_dir():
        pytest.skip(f"real ALEPH files not found at {ALEPH_DIR} (shared/ is absent)")
    return list(itertools.islice(read_archive([ALEPH_DIR / ALEPH_RECO]), n))


def toy_hit_events(n: int, seed: int, run: int = 1) -> list[dict[str, Any]]:
    """``n`` toy events with hits, described by the sPHENIX geometry."""
    events = sample_events(n, seed=seed, mean_tracks=3.0, run=run)
    for event in events:
        event["geometry_id"] = "sphenix"
    return events


def write_events(path: Path, shards: list[list[dict[str, Any]]]) -> Path:
    """A corpus with one shard per list of events."""
    with CorpusWriter(path, name="test", citation=Citation(title="test corpus"),
                      provenance=Provenance(command="pytest"),
                      shard_events=len(shards[0])) as writer:
        for events in shards:
            writer.write(events_to_table(events))
    return path


def write_config(path: Path, corpora: list[tuple[Path, str]], **settings: Any) -> Path:
    """A pretraining config (JSON is YAML) over ``corpora`` (path, name)."""
    body = {"corpora": [{"path": str(p), "name": name} for p, name in corpora],
            "size": "tiny", "objective": "knnn_leakfree", "k": 4, "warmup": 2,
            **settings}
    path.write_text(json.dumps(body))
    return path


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: One rank of ``pretrain``: what torchrun starts, without the launcher and CLI imports.
RANK_MAIN = ("import sys; from pathlib import Path; from npfm.train.config import load_config; "
             "from npfm.train.loop import pretrain; pretrain(load_config(sys.argv[1]), "
             "Path(sys.argv[2]))")


def start_ranks(config: Path, run: Path, world: int = 2,
                errors: int = subprocess.PIPE) -> list[subprocess.Popen[bytes]]:
    """``world`` CPU processes of one ``pretrain`` run, rendezvous by the env:// variables
    torchrun sets (MASTER_ADDR/PORT, RANK, LOCAL_RANK, WORLD_SIZE); gloo backend.
    ``errors``: where their stderr goes (a pipe read by ``wait_ranks``)."""
    port = str(free_port())
    return [subprocess.Popen(
        [sys.executable, "-c", RANK_MAIN, str(config), str(run)],
        env={**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "RANK": str(rank),
             "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)},
        stdout=subprocess.DEVNULL, stderr=errors) for rank in range(world)]


def wait_ranks(ranks: list[subprocess.Popen[bytes]]) -> None:
    for proc in ranks:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-4000:]
