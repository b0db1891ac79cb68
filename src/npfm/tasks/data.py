"""Labelled events for downstream tasks: hits as the model sees them, plus truth.

``load_events(corpus, ...)`` reads events into ``TaskEvent`` records: the event's hits as
a one-event ``PackedBatch`` (the loader's conventions: float32, subsystem codes, NaN for
null) and the event's truth (per-particle arrays and event-level labels) as numpy.
``pack(events)`` concatenates records into one batch for a forward pass. With
``cells=True`` each record also holds its calorimeter cells (a one-event batch of the
``cell`` group, ``pack_cells``).

Splits: an event keeps the split its corpus assigned (curation); an event without one
goes to train (70%), validation (10%) or test (20%) by the sha256 of "run:event", so the
assignment is fixed for a given event whatever else the corpus holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.loader import DEFAULT_HIT_COLUMNS, EventLoader, PackedBatch
from npfm.model.cells import CELL_COLUMNS

EVENT_COLUMNS = ("geometry_id", "data_level", "experiment", "split", "magnetic_field",
                 "vertex_x", "vertex_y", "vertex_z", "truth_quark_flavour", "truth_x",
                 "truth_q2", "truth_y", "truth_scattered_lepton")
PARTICLE_COLUMNS = ("particle_pdg", "particle_charge", "particle_px", "particle_py",
                    "particle_pz", "particle_vx", "particle_vy", "particle_vz",
                    "particle_primary")
HIT_COLUMNS = (*DEFAULT_HIT_COLUMNS, "hit_module", "hit_weight")
SPLITS = ("train", "validation", "test")


def fallback_split(run: int, event: int) -> str:
    """70/10/20 train/validation/test by the sha256 of ``"run:event"``."""
    bucket = int(hashlib.sha256(f"{run}:{event}".encode()).hexdigest()[:8], 16) % 10
    return "train" if bucket < 7 else "validation" if bucket < 8 else "test"


@dataclass
class TaskEvent:
    """One event: its hits (a one-event batch), event-level values and truth particles;
    its cells where loaded, and values derived from it once (e.g. a task's features)."""

    batch: PackedBatch
    info: dict[str, Any]
    particles: dict[str, np.ndarray] = field(default_factory=dict)
    cells: PackedBatch | None = None
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def n_hits(self) -> int:
        return int(self.batch.cu_seqlens[-1])

    @property
    def split(self) -> str:
        return str(self.info["split"])

    def hit(self, name: str) -> np.ndarray:
        """A hit column as numpy (float32 with NaN, or int64 with -100 for null)."""
        return self.batch.fields[name].numpy()


def _particles(corpus: Corpus) -> Iterator[dict[str, np.ndarray]]:
    """Truth particle arrays of every event, in corpus order (the loader's order)."""
    for table in corpus.iter_tables(list(PARTICLE_COLUMNS)):
        cols = {name: table.column(name).to_pylist() for name in PARTICLE_COLUMNS}
        for i in range(table.num_rows):
            yield {name: np.asarray([np.nan if v is None else v for v in (cols[name][i] or [])],
                                    dtype=np.float64) for name in PARTICLE_COLUMNS}


def _split_events(batch: PackedBatch) -> list[PackedBatch]:
    """A multi-event batch as one-event batches."""
    cu = batch.cu_seqlens.tolist()
    out = []
    for i in range(batch.n_events):
        sl = slice(cu[i], cu[i + 1])
        out.append(PackedBatch({k: v[sl].clone() for k, v in batch.fields.items()},
                               torch.tensor([0, cu[i + 1] - cu[i]]), batch.run[i:i + 1],
                               batch.event[i:i + 1],
                               {k: [v[i]] for k, v in batch.event_fields.items()}))
    return out


def load_events(corpus_path: Path | str, *, splits: Sequence[str] = SPLITS,
                subsystems: Sequence[str] | None = None, limit: int | None = None,
                min_hits: int = 1, cells: bool = False) -> list[TaskEvent]:
    """Events of ``corpus_path`` in the given splits (at most ``limit``, in corpus order)
    with at least ``min_hits`` hits (of the selected ``subsystems``), with their cells
    if ``cells``."""
    for s in splits:
        if s not in SPLITS:
            raise NpfmError(f"split {s!r}", "unknown split", f"use {', '.join(SPLITS)}")
    corpus = Corpus.open(corpus_path)
    particles = _particles(corpus)  # aligned with the unshuffled loader's events
    loader = EventLoader(corpus, 16, columns=HIT_COLUMNS, subsystems=subsystems,
                         event_columns=EVENT_COLUMNS)
    cell_batches = iter(EventLoader(corpus, 16, group="cell", columns=CELL_COLUMNS)) \
        if cells else None
    events: list[TaskEvent] = []
    for batch in loader:
        cell_events = _split_events(next(cell_batches)) if cell_batches is not None else None
        for j, one in enumerate(_split_events(batch)):
            truth = next(particles)
            run, number = int(one.run[0]), int(one.event[0])
            info = {k: v[0] for k, v in one.event_fields.items()}
            info["split"] = info["split"] or fallback_split(run, number)
            info["run"], info["event"] = run, number
            if info["split"] not in splits or int(one.cu_seqlens[-1]) < min_hits:
                continue
            events.append(TaskEvent(one, info, truth,
                                    None if cell_events is None else cell_events[j]))
            if limit is not None and len(events) >= limit:
                return events
    return events


def _pack(batches: Sequence[PackedBatch]) -> PackedBatch:
    """One-event batches packed end to end into one batch."""
    if not batches:
        raise ValueError("pack() needs at least one event")
    counts = torch.tensor([int(b.cu_seqlens[-1]) for b in batches])
    first = batches[0]
    return PackedBatch(
        {k: torch.cat([b.fields[k] for b in batches]) for k in first.fields},
        torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]),
        torch.cat([b.run for b in batches]), torch.cat([b.event for b in batches]),
        {k: [b.event_fields[k][0] for b in batches] for k in first.event_fields})


def pack(events: Sequence[TaskEvent]) -> PackedBatch:
    """The events' hits packed end to end into one batch."""
    return _pack([e.batch for e in events])


def pack_cells(events: Sequence[TaskEvent]) -> PackedBatch:
    """The events' cells packed end to end into one batch (events loaded with cells)."""
    if any(e.cells is None for e in events):
        raise ValueError("events loaded without cells; use load_events(..., cells=True)")
    return _pack([e.cells for e in events if e.cells is not None])
