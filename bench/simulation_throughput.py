"""Simulation + writing throughput per core against Pythia generation alone, in one run.

    .venv/bin/python bench/simulation_throughput.py [--events 400]

For sphenix x pp200 and aleph x ee_z, on one core: generate ``--events`` events with
Pythia (timed after initialisation), then (after a small untimed warm-up) simulate
the same events (batches of ``SIM_BATCH``), build the Arrow table and write a
checksummed shard (timed). Prints events/s of each step and the ratio
simulation / generation (goal: >= 0.5).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from npfm.detectors import load_geometry, simulate_events
from npfm.detectors.production import SIM_BATCH
from npfm.events.build import events_to_table
from npfm.events.writer import write_indexed_shard
from npfm.physics import generate

PAIRS = (("sphenix", "pp200"), ("aleph", "ee_z"))


def measure(detector: str, physics: str, n: int, out: Path) -> tuple[float, float, int]:
    stream = generate(physics, n + 1, seed=12345)
    next(stream)  # initialisation and the first event are not timed
    start = time.perf_counter()
    generated = list(stream)
    t_gen = time.perf_counter() - start
    geometry = load_geometry(detector)
    rng = np.random.default_rng(1)
    # One-time start-up, untimed like Pythia's initialisation: imports (pyarrow loads
    # pandas on its first numpy conversion) and geometry tables.
    write_indexed_shard(out, 1, events_to_table(simulate_events(generated[:2], geometry, rng)))
    start = time.perf_counter()
    events = []
    for i in range(0, n, SIM_BATCH):
        events += simulate_events(generated[i:i + SIM_BATCH], geometry, rng, first_event=i)
    entry = write_indexed_shard(out, 0, events_to_table(events))
    t_sim = time.perf_counter() - start
    return t_gen, t_sim, entry["hits"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    args = parser.parse_args()
    n = args.events
    print(f"{n} events per pair, one process; best single run")
    print(f"{'pair':16s} {'gen ev/s':>9s} {'sim+write ev/s':>15s} {'hits/ev':>8s} "
          f"{'ratio':>6s} {'end-to-end ev/s':>16s}")
    for detector, physics in PAIRS:
        with tempfile.TemporaryDirectory() as tmp:
            t_gen, t_sim, hits = measure(detector, physics, n, Path(tmp))
        print(f"{detector + ' x ' + physics:16s} {n / t_gen:9.0f} {n / t_sim:15.0f} "
              f"{hits / n:8.0f} {t_gen / t_sim:6.2f} {n / (t_gen + t_sim):16.0f}")


if __name__ == "__main__":
    main()
