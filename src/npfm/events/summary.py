"""Corpus summary for ``npfm inspect``: counts, per-subsystem hits per event, labels.

Hits per event are accumulated as exact integer histograms, so the mean and quantiles
are exact and memory does not grow with the number of events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from npfm.events import vocabulary
from npfm.events.corpus import Corpus

LABEL_COLUMNS = ("hit_particle", "hit_track_id", "hit_pid_class", "hit_noise", "hit_t",
                 "hit_edep", "hit_adc", "particle_pdg", "object_type", "truth_x",
                 "truth_quark_flavour")
QUANTILES = (0.05, 0.5, 0.95)


@dataclass
class Summary:
    """Streaming statistics of a corpus."""

    events: int = 0
    hist: dict[str, np.ndarray] = field(default_factory=dict)  # name -> count histogram
    present: Counter[str] = field(default_factory=Counter)  # events with a non-null column
    categories: dict[str, Counter[str]] = field(default_factory=dict)

    def add_counts(self, name: str, per_event: np.ndarray) -> None:
        h = np.bincount(per_event)
        old = self.hist.get(name, np.zeros(0, dtype=np.int64))
        size = max(len(h), len(old))
        self.hist[name] = np.pad(old, (0, size - len(old))) + np.pad(h, (0, size - len(h)))

    def stats(self, name: str) -> tuple[int, float, list[int]]:
        """(events counted, mean, quantiles) of a count histogram."""
        h = self.hist[name]
        n = int(h.sum())
        mean = float((h * np.arange(len(h))).sum() / n) if n else 0.0
        cdf = np.cumsum(h) / max(n, 1)
        return n, mean, [int(np.searchsorted(cdf, q)) for q in QUANTILES]


def _per_event(table: pa.Table, column: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """For each vocabulary name, its number of occurrences per event (events with data)."""
    arr = table.column(column).combine_chunks()
    has = ~np.asarray(arr.is_null())
    flat = pc.list_flatten(arr)
    rows = np.asarray(pc.list_parent_indices(arr))
    codes = np.asarray(pc.index_in(flat, pa.array(names)).fill_null(len(names)))
    grid = np.bincount(rows * (len(names) + 1) + codes,
                       minlength=len(arr) * (len(names) + 1)).reshape(len(arr), -1)
    out = {"all": grid[has].sum(axis=1)}
    for i, name in enumerate(names):
        if grid[has, i].any():
            out[name] = grid[has, i]
    return out


def summarize(corpus: Corpus, progress: Callable[[int], None] | None = None) -> Summary:
    """Stream through every shard once."""
    summary = Summary()
    columns = ["experiment", "data_level", "split", "hit_subsystem", "object_type",
               "particle_pdg", *[c for c in LABEL_COLUMNS if c not in ("particle_pdg",
                                                                        "object_type")]]
    for table in corpus.iter_tables(columns):
        summary.events += table.num_rows
        for key, counts in _per_event(table, "hit_subsystem",
                                      vocabulary.names("subsystems")).items():
            summary.add_counts(f"hits/{key}", counts)
        for key, counts in _per_event(table, "object_type",
                                      vocabulary.names("object_types")).items():
            summary.add_counts(f"objects/{key}", counts)
        particles = pc.list_value_length(table.column("particle_pdg")).drop_null()
        summary.add_counts("particles/all", np.asarray(particles, dtype=np.int64))
        for col in LABEL_COLUMNS:
            summary.present[col] += table.num_rows - table.column(col).null_count
        for col in ("experiment", "data_level", "split"):
            counter = summary.categories.setdefault(col, Counter())
            counter.update(str(v) for v in table.column(col).to_pylist())
        if progress:
            progress(table.num_rows)
    return summary


def plot_hits(summary: Summary, path: Path) -> Path:
    """Histogram of hits (or objects) per event per subsystem, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    filled = [k for k, h in summary.hist.items() if h.sum() and (h > 0).any()
              and np.flatnonzero(h).max() > 0]
    keys = [k for k in filled if k.startswith("hits/")] or \
        [k for k in filled if k.startswith("objects/")]
    for key in keys:
        h = summary.hist[key]
        step = max(1, -(-len(h) // 50))  # integer-aligned bins, at most ~50
        edges = np.arange(0, len(h) + step, step)
        counts = np.add.reduceat(h, edges[:-1])
        ax.stairs(counts, edges, label=key.split("/", 1)[1], linewidth=1.5)
    noun = "hits" if keys and keys[0].startswith("hits/") else "objects"
    ax.set(xlabel=f"{noun} per event", ylabel="events", yscale="log",
           title=f"{summary.events} events: {noun} per event by subsystem/type")
    if keys:
        ax.legend(frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
