"""Loader throughput against a plain pyarrow scan of the same shards, in one run.

    .venv/bin/python bench/loader_throughput.py [--events 4000] [--repeat 3]

Writes a corpus of toy events (about 820 hits each, the size of FM4NPP's TPC events)
to a temporary directory, then times, best of ``--repeat``:
  * pyarrow: ParquetFile.read_row_group over every row group, same columns;
  * npfm loader: EventLoader -> packed torch batches (sha256 verified, as by default, on
    a first read: a process hashes each shard once and remembers it, so every repeat
    forgets the hashes first; the loader hashes in a background thread ahead of its
    reading), value-checked;
  * npfm loader without checksum verification (still value-checked).
Prints the load average before and after (other work on the machine skews the ratio),
events/s, hits/s and the ratio loader / pyarrow (goal: >= 0.5).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch

from npfm.events.build import events_to_table
from npfm.events.corpus import Corpus, forget_verified
from npfm.events.loader import DEFAULT_HIT_COLUMNS, EventLoader
from npfm.events.metadata import Citation, Provenance
from npfm.events.sample import sample_events
from npfm.events.writer import CorpusWriter


def build(path: Path, n_events: int) -> Corpus:
    with CorpusWriter(path, name="bench", citation=Citation(title="bench"),
                      provenance=Provenance(command="bench"), shard_events=1000) as writer:
        for start in range(0, n_events, 500):
            events = sample_events(min(500, n_events - start), seed=start)
            writer.write(events_to_table(events))
    return Corpus.open(path)


def pyarrow_scan(corpus: Corpus) -> int:
    columns = [*DEFAULT_HIT_COLUMNS, "run", "event"]
    rows = 0
    for entry in corpus.shards:
        pf = pq.ParquetFile(corpus.shard_path(entry))
        for i in range(pf.num_row_groups):
            rows += pf.read_row_group(i, columns=columns).num_rows
    return rows


def loader_scan(corpus: Corpus, verify: bool) -> int:
    forget_verified()
    rows = 0
    for batch in EventLoader(corpus, batch_size=64, verify=verify):
        rows += batch.n_events
    return rows


def best_time(func, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = build(Path(tmp) / "corpus", args.events)
        n, hits = corpus.n_events, int(corpus.manifest["hits"])
        assert pyarrow_scan(corpus) == n == loader_scan(corpus, True)
        results = {
            "pyarrow read_row_group": best_time(lambda: pyarrow_scan(corpus), args.repeat),
            "npfm EventLoader (sha256 verified)": best_time(lambda: loader_scan(corpus, True),
                                                            args.repeat),
            "npfm EventLoader (no verification)": best_time(lambda: loader_scan(corpus, False),
                                                            args.repeat),
        }
    base = results["pyarrow read_row_group"]
    print(f"corpus: {n} events, {hits} hits ({hits / n:.0f} per event), "
          f"{len(corpus.shards)} shards; best of {args.repeat}")
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}, after: "
          "{:.2f} {:.2f} {:.2f}".format(*load_before, *os.getloadavg()))
    print(f"{'reader':38s} {'events/s':>10s} {'hits/s':>12s} {'ratio':>7s}")
    for name, seconds in results.items():
        print(f"{name:38s} {n / seconds:10.0f} {hits / seconds:12.3e} {base / seconds:7.2f}")


if __name__ == "__main__":
    main()
