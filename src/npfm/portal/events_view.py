"""Sample events of a dataset for the event display: hit positions, subsystem, track.

Events are read from the first row group of the dataset's first shard on disk (the
corpus directory recorded in the catalog), through ``Corpus`` so the manifest, the shard's
sha256 (once per process), its schema and the values read are checked (docs/guarantees.md).
Positions are in cm (docs/event-model.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from npfm.events.checks import check_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.shards import iter_row_groups

#: Most sample events returned at once.
MAX_EVENTS = 10
#: Most hits sent per event (the first ones, in stored order).
MAX_HITS = 5000
_COLUMNS = ["run", "event", "experiment", "sqrt_s", "hit_x", "hit_y", "hit_z",
            "hit_subsystem", "hit_track_id"]


def sample_events(dataset_dir: str, n: int) -> list[dict[str, Any]]:
    """Up to ``n`` events with hits: run, event, x/y/z (cm), subsystem and track id lists."""
    corpus = Corpus.open(Path(dataset_dir))
    for entry in corpus.shards:
        if entry["hits"] == 0:
            continue
        table = next(iter_row_groups(corpus.shard_path(entry), corpus.open_shard(entry),
                                     _COLUMNS))
        check_table(table, str(corpus.shard_path(entry)))
        return [_event(table.slice(i, 1)) for i in range(min(n, table.num_rows))]
    raise NpfmError(dataset_dir, "no shard with hits", "the event display needs a corpus "
                    "with detector hits (this one holds objects only)")


def _values(table: pa.Table, column: str) -> list[Any]:
    values = table.column(column)[0].as_py()
    return list(values or [])[:MAX_HITS]


def _rounded(values: list[Any]) -> list[float | None]:
    arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return [None if np.isnan(v) else round(float(v), 3) for v in arr]


def _event(row: pa.Table) -> dict[str, Any]:
    tracks = _values(row, "hit_track_id")
    return {"run": row.column("run")[0].as_py(), "event": row.column("event")[0].as_py(),
            "experiment": row.column("experiment")[0].as_py(),
            "sqrt_s": row.column("sqrt_s")[0].as_py(),
            "x": _rounded(_values(row, "hit_x")), "y": _rounded(_values(row, "hit_y")),
            "z": _rounded(_values(row, "hit_z")), "subsystem": _values(row, "hit_subsystem"),
            "track": [-1 if t is None else int(t) for t in tracks] if tracks else []}
