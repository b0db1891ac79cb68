"""Shared fixtures: small corpora written with the real writer."""

from __future__ import annotations

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
