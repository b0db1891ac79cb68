"""ePIC simulation throughput with and without the Barrel Imaging Calorimeter.

    .venv/bin/python bench/bic_throughput.py [--events 400] [--setting full]

epic x ep_eic events from ``generate("ep_eic", n, seed=SEED)`` (generated once, not
timed), simulated in batches of ``SIM_BATCH`` in one process with the BIC off
(``calorimeter=false``), with cells and imaging hits but no waveforms
(``waveforms=false``), and in full; then ``events_to_table`` and ``write_indexed_shard``.
Prints CPU-time events/s of each stage (the second of two repetitions), shard size per
event, and cells, imaging hits and waveform samples per event; with ``--setting``, that
setting alone and the process's peak RSS (generation included).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from npfm.detectors import load_geometry, simulate_events
from npfm.detectors.production import SIM_BATCH
from npfm.events.build import events_to_table
from npfm.events.writer import write_indexed_shard
from npfm.physics import generate

SEED = 12345
SETTINGS = {"off": {"calorimeter": False}, "no waveforms": {"waveforms": False},
            "full": {}}


def _run(events: list, options: dict, out: Path) -> dict[str, float]:
    geo = load_geometry("epic")
    t0 = time.process_time()
    rows = []
    for i in range(0, len(events), SIM_BATCH):
        rows += simulate_events(events[i:i + SIM_BATCH], geo, np.random.default_rng([SEED, i]),
                                first_event=i, **options)
    t1 = time.process_time()
    table = events_to_table(rows)
    t2 = time.process_time()
    entry = write_indexed_shard(out, 0, table)
    t3 = time.process_time()
    n = len(events)

    def per_event(key: str) -> float:
        return sum(len(r.get(key, ())) for r in rows) / n

    imaging = sum(int(np.sum(r["hit_subsystem"] == "EcalBarrelImaging")) for r in rows) / n
    return {"sim": n / (t1 - t0), "table": n / (t2 - t1), "write": n / (t3 - t2),
            "all": n / (t3 - t0), "kb": entry["bytes"] / 1e3 / n,
            "cells": per_event("cell_energy"), "imaging": imaging,
            "samples": per_event("sample_adc")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--setting", choices=list(SETTINGS))
    args = parser.parse_args()
    events = list(generate("ep_eic", args.events, seed=SEED))
    print("| BIC | simulation ev/CPU s | table | writing | the three together | "
          "shard kB/event | cells/event | imaging hits/event | samples/event |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in SETTINGS.items():
            if args.setting not in (None, name):
                continue
            _run(events, options, Path(tmp))  # first repetition: warm-up
            r = _run(events, options, Path(tmp))
            print(f"| {name} | {r['sim']:,.0f} | {r['table']:,.0f} | {r['write']:,.0f} | "
                  f"{r['all']:,.0f} | {r['kb']:.1f} | {r['cells']:.1f} | "
                  f"{r['imaging']:.1f} | {r['samples']:,.0f} |")
    if args.setting:
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
