"""Simulation throughput per core against Pythia's own event loop, stage by stage.

    .venv/bin/python bench/simulation_throughput.py [--events 400] [--kernels numpy]

For sphenix x pp200 and aleph x ee_z, in one process on one core, with the settings and
seed of ``npfm.physics.generate(physics, n, seed=SEED)``:

1. Pythia alone: ``pythia.next()`` on a bare initialised generator (the reference);
2. the stages, on another generator with the same seed (so the same events): Pythia,
   record conversion (``convert`` with beam info, truth, beam spot and overlay), simulation
   (batches of ``SIM_BATCH``), Arrow table building, and writing the checksummed shard;
3. end to end: ``generate`` -> ``simulate_events`` -> ``events_to_table`` ->
   ``write_indexed_shard``, as ``npfm simulate`` runs a shard.

Pythia's initialisation is not timed; the rest is timed after a two-event warm-up
(imports, geometry tables). Prints events per CPU second and the CPU-time share of each
stage, and the ratio of end-to-end events/s to Pythia-alone events/s (goal: >= 0.5) by
wall clock and by CPU time of the process (the second is not disturbed by other jobs on
the core), and the ratio a free simulation would leave: Pythia alone against Pythia plus
the conversion, table and writing stages (CPU time).
``--kernels numpy`` runs the simulation without its compiled kernels
(``npfm.detectors.kernels``; the same events).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from npfm.detectors import kernels, load_geometry, simulate_events
from npfm.detectors.production import SIM_BATCH
from npfm.events.build import events_to_table
from npfm.events.writer import write_indexed_shard
from npfm.physics import generate
from npfm.physics.configs import PYTHIA_CONFIGS
from npfm.physics.generate import resolve_options
from npfm.physics.overlay import BeamSpot, overlay
from npfm.physics.pythia_source import PythiaGenerator
from npfm.physics.record_view import ParticleReader

PAIRS = (("sphenix", "pp200"), ("aleph", "ee_z"))
SEED = 12345
STAGES = ("pythia", "convert", "simulate", "table", "write")


def _pythia(physics: str) -> PythiaGenerator:
    config = PYTHIA_CONFIGS[physics]
    gen = PythiaGenerator(config.pythia_settings(resolve_options(physics, {})), SEED)
    gen.next()  # first event, untimed like the initialisation
    return gen


def _clocks() -> np.ndarray:
    """Wall-clock and CPU seconds of this process (CPU time is immune to other jobs)."""
    return np.array([time.perf_counter(), time.process_time()])


def pythia_alone(physics: str, n: int) -> np.ndarray:
    """Wall and CPU seconds for ``n`` ``Pythia::next()`` calls."""
    gen = _pythia(physics)
    start = _clocks()
    for _ in range(n):
        gen.next()
    return _clocks() - start


def simulate_all(batches: Iterator[list[Any]], detector: str) -> list[dict[str, Any]]:
    """Simulate batches of generated events in order, as a production shard does."""
    geometry, rng = load_geometry(detector), np.random.default_rng(1)
    events: list[dict[str, Any]] = []
    for batch in batches:
        events += simulate_events(batch, geometry, rng, first_event=len(events))
    return events


def _batches(records: Iterator[Any]) -> Iterator[list[Any]]:
    return iter(lambda: list(itertools.islice(records, SIM_BATCH)), [])


def stages(detector: str, physics: str, n: int, out: Path) -> dict[str, float]:
    """CPU seconds spent in each of ``STAGES`` for ``n`` events (CPU time, so that other
    jobs on the core do not distort the shares)."""
    gen = _pythia(physics)
    config = PYTHIA_CONFIGS[physics]
    spot, rng = BeamSpot(), np.random.default_rng(1)
    info = {"facility": config.facility, "vertex_x": 0.0, "vertex_y": 0.0, "vertex_z": 0.0}
    times = dict.fromkeys(STAGES, 0.0)
    reader = ParticleReader()
    generated = []
    for _ in range(n):
        t0 = time.process_time()
        event = gen.next()
        t1 = time.process_time()
        generated.append(overlay(spot.smear(config.to_event(event, reader, info), rng), []))
        times["pythia"] += t1 - t0
        times["convert"] += time.process_time() - t1
    t0 = time.process_time()
    events = simulate_all(_batches(iter(generated)), detector)
    t1 = time.process_time()
    table = events_to_table(events)
    t2 = time.process_time()
    write_indexed_shard(out, 0, table)
    times.update(simulate=t1 - t0, table=t2 - t1, write=time.process_time() - t2)
    return times


def end_to_end(detector: str, physics: str, n: int, out: Path) -> np.ndarray:
    """Wall and CPU seconds for ``n`` events through npfm's own path (Pythia
    initialisation excluded)."""
    stream = generate(physics, n + 1, seed=SEED)
    next(stream)
    start = _clocks()
    write_indexed_shard(out, 1, events_to_table(simulate_all(_batches(stream), detector)))
    return _clocks() - start


def warm_up(detector: str, physics: str, out: Path) -> None:
    """Imports (pyarrow loads pandas on its first numpy conversion) and geometry."""
    events = simulate_all(iter([list(generate(physics, 2, seed=SEED))]), detector)
    write_indexed_shard(out, 2, events_to_table(events))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--kernels", choices=kernels.BACKENDS, default="auto")
    args = parser.parse_args()
    n = args.events
    compiled = kernels.AVAILABLE and args.kernels != "numpy"
    print(f"{n} events per pair, one process, seed {SEED}, compiled simulation kernels: "
          f"{'yes' if compiled else 'no'}")
    for detector, physics in PAIRS:
        with tempfile.TemporaryDirectory() as tmp, kernels.backend(args.kernels):
            warm_up(detector, physics, Path(tmp))
            t_alone = pythia_alone(physics, n)
            times = stages(detector, physics, n, Path(tmp))
            t_e2e = end_to_end(detector, physics, n, Path(tmp))
        total = sum(times.values())
        print(f"\n{detector} x {physics}: Pythia alone {n / t_alone[0]:,.0f} ev/s "
              f"({n / t_alone[1]:,.0f} per CPU second)")
        for stage in STAGES:
            print(f"  {stage:9s} {n / times[stage]:9,.0f} ev/CPU s  {times[stage] / total:6.1%}")
        print(f"  end to end {n / t_e2e[0]:8,.0f} ev/s ({n / t_e2e[1]:,.0f} per CPU second)")
        print(f"  ratio to Pythia alone: {t_alone[0] / t_e2e[0]:.3f} wall clock, "
              f"{t_alone[1] / t_e2e[1]:.3f} CPU time")
        rest = times["convert"] + times["table"] + times["write"]
        print(f"  ceiling with a free simulation: {t_alone[1] / (t_alone[1] + rest):.3f} "
              f"(conversion, table and writing cost {rest / t_alone[1]:.2f}x Pythia alone)")


if __name__ == "__main__":
    main()
