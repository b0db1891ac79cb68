"""Central heavy-ion events through the TPCs: events/s, peak memory, occupancy, windows.

    .venv/bin/python bench/heavy_ion.py [--events 4] [--max-hits 4000]

For sphenix x auau200 and alice x pbpb5020, each in its own process (so the peak RSS is
that system's), with ``b_max_fm`` = ``CENTRAL_B_MAX_FM`` (0-5 %): generate ``--events``
central events (Pythia Angantyr), simulate them in one batch (``simulate_events``), build
the Arrow table and write the checksummed shard, each stage timed (wall clock and CPU
time of the process); then read the shard back through ``EventLoader`` one event at a
time and split it into windows of at most ``--max-hits`` hits (``npfm.events.windows``),
checking every hit lands in exactly one window. Prints one JSON line per system: dN_ch/deta
at |eta| < 0.5 against the published 0-5 % value, hits per event, seconds per event per
stage, events/s end to end, peak RSS (MB), windows per event.

With ``--events-list 1,3`` each system runs once per count, giving the memory per event
held in a batch (the slope of peak RSS against events).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SYSTEMS = (("sphenix", "auau200"), ("alice", "pbpb5020"))


def _clocks() -> np.ndarray:
    return np.array([time.perf_counter(), time.process_time()])


def one(detector: str, physics: str, n_events: int, max_hits: int) -> dict[str, Any]:
    """Measure one system in this process (run through ``--one``)."""
    from npfm.detectors import load_geometry, simulate_events
    from npfm.events.build import events_to_table
    from npfm.events.corpus import Corpus
    from npfm.events.loader import EventLoader
    from npfm.events.metadata import Citation, Provenance
    from npfm.events.windows import split
    from npfm.events.writer import CorpusWriter
    from npfm.physics import generate
    from npfm.physics.heavy_ion import CENTRAL_B_MAX_FM, CENTRAL_DNDETA, dndeta_mid

    b_max = CENTRAL_B_MAX_FM[physics]
    stream = generate(physics, n_events + 1, seed=7, b_max_fm=b_max)
    next(stream)  # initialisation and a first event, untimed
    times: dict[str, np.ndarray] = {}
    t0 = _clocks()
    generated = list(stream)
    times["generate"] = _clocks() - t0
    t0 = _clocks()
    events = simulate_events(generated, load_geometry(detector), np.random.default_rng(7))
    times["simulate"] = _clocks() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = _clocks()
        table = events_to_table(events, source=physics)
        times["table"] = _clocks() - t0
        t0 = _clocks()
        with CorpusWriter(Path(tmp) / "c", name=physics, citation=Citation(title=physics),
                          provenance=Provenance(command="bench/heavy_ion.py")) as writer:
            writer.write(table, source=physics)
        times["write"] = _clocks() - t0
        hits = [len(e["hit_x"]) for e in events]
        del events, table
        windows, largest = [], 0
        t0 = _clocks()
        for batch in EventLoader(Corpus.open(Path(tmp) / "c"), 1):
            win = split(batch, max_hits)
            assert torch.equal(torch.sort(win.source).values,
                               torch.arange(int(batch.cu_seqlens[-1])))
            sizes = win.batch.cu_seqlens.diff()
            windows.append(win.n_windows)
            largest = max(largest, int(sizes.max()))
        times["load+split"] = _clocks() - t0
    dndeta = [dndeta_mid(e) for e in generated]
    reference, error = CENTRAL_DNDETA[physics]
    total = sum(times[k] for k in ("generate", "simulate", "table", "write"))
    return {
        "system": f"{detector} x {physics}", "b_max_fm": b_max, "events": n_events,
        "dndeta": round(float(np.mean(dndeta)), 1),
        "dndeta_sd": round(float(np.std(dndeta, ddof=1)), 1) if n_events > 1 else None,
        "dndeta_published": f"{reference:g} +- {error:g}",
        "ratio": round(float(np.mean(dndeta)) / reference, 3),
        "hits_per_event": int(np.mean(hits)), "particles_per_event": int(np.mean(
            [len(g.pdg) for g in generated])),
        "s_per_event_wall": {k: round(v[0] / n_events, 2) for k, v in times.items()},
        "s_per_event_cpu": {k: round(v[1] / n_events, 2) for k, v in times.items()},
        "events_per_s_wall": round(n_events / total[0], 3),
        "events_per_cpu_s": round(n_events / total[1], 3),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "max_hits": max_hits, "windows_per_event": windows, "largest_window": largest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=4)
    parser.add_argument("--events-list", default=None, help="e.g. 1,3: one run per count")
    parser.add_argument("--max-hits", type=int, default=4000)
    parser.add_argument("--only", default=None, help="one physics name, e.g. pbpb5020")
    parser.add_argument("--one", nargs=2, metavar=("DETECTOR", "PHYSICS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, args.events, args.max_hits)))
        return
    counts = [int(c) for c in args.events_list.split(",")] if args.events_list \
        else [args.events]
    for detector, physics in SYSTEMS:
        if args.only and physics != args.only:
            continue
        for n in counts:
            result = subprocess.run(
                [sys.executable, __file__, "--one", detector, physics, "--events", str(n),
                 "--max-hits", str(args.max_hits)], check=True, capture_output=True,
                text=True)
            print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
