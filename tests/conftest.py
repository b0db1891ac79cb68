"""Shared fixtures: small corpora written with the real writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from npfm.events.build import events_to_table
from npfm.events.metadata import Citation, Provenance
from npfm.events.sample import sample_events
from npfm.events.writer import CorpusWriter

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ALEPH_DIR = SHARED / "data" / "aleph"


def write_corpus(path: Path, table: pa.Table, shard_events: int = 40) -> Path:
    with CorpusWriter(path, name="test", citation=Citation(title="test corpus"),
                      provenance=Provenance(command="pytest"), shard_events=shard_events) as w:
        w.write(table)
    return path


@pytest.fixture
def make_corpus() -> Callable[..., Path]:
    """``make_corpus(path, table, shard_events=40)`` writes a corpus with the real writer."""
    return write_corpus


def _kill_after_shards(args: list[str], out: Path, shards: int = 2) -> Path:
    """Run ``npfm ARGS --out OUT`` and SIGKILL it once ``shards`` shards are recorded in
    its build progress; returns the progress file. Fails if the run finished first."""
    proc = subprocess.Popen([sys.executable, "-m", "npfm", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    progress, deadline = out / ".progress.json", time.monotonic() + 120
    while time.monotonic() < deadline:
        if progress.exists() and len(json.loads(progress.read_text())["shards"]) >= shards:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists(), "the run finished before it was killed"
    return progress


@pytest.fixture
def kill_after_shards() -> Callable[..., Path]:
    """``kill_after_shards(args, out, shards=2)``: start an npfm build, kill it mid-way."""
    return _kill_after_shards


@pytest.fixture(scope="session")
def sample_table() -> pa.Table:
    """100 toy events with hits, particles and labels (about 80k hits)."""
    return events_to_table(sample_events(100, seed=7))


@pytest.fixture
def corpus_dir(tmp_path: Path, sample_table: pa.Table) -> Path:
    return write_corpus(tmp_path / "corpus", sample_table)


@pytest.fixture
def aleph_dir() -> Path:
    if not ALEPH_DIR.is_dir():
        pytest.skip(f"real ALEPH files not found at {ALEPH_DIR} (shared/ is absent)")
    return ALEPH_DIR
