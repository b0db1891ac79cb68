"""Feed a stream of event mappings into a corpus, in validated batches, resumably."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from npfm.events.build import events_to_table
from npfm.events.writer import CorpusWriter


def ingest(events: Iterable[Mapping[str, Any]], writer: CorpusWriter, *, source: str,
           batch_events: int = 1_000) -> int:
    """Write ``events`` through ``writer``; returns the number of events written now.

    Events already in finished shards of a resumed build (``writer.events_done``) are
    skipped, so a killed build restarted with the same inputs continues where it was.
    Each batch is validated before anything of it is written; an error names the
    source and the row.
    """
    stream = itertools.islice(iter(events), writer.events_done, None)
    written, first = 0, writer.events_done
    while batch := list(itertools.islice(stream, batch_events)):
        label = f"{source} events {first + written}-{first + written + len(batch) - 1}"
        writer.write(events_to_table(batch, source=label), source=label)
        written += len(batch)
    return written
