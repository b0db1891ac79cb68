"""Corpus production on a local Dask cluster: events/s per core with 1 and 2 workers.

    .venv/bin/python bench/simulation_scaling.py [--events 1600] [--shard-events 200]

Runs ``npfm.detectors.production.run_job`` for aleph x ee_z and sphenix x pp200 on a
``dask.distributed.LocalCluster`` of 1, then 2 single-threaded worker processes (one core
each), timed from submission to the closed corpus (every shard starts its own Pythia,
as in production; cluster start-up is not timed). Prints events/s (wall clock), per
worker, per CPU second the workers spent (the per-core rate, undisturbed by other jobs
on a shared machine), and the wall-clock speed-up; the corpora must be identical.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from dask.distributed import Client, LocalCluster

from npfm.detectors.production import SimulationJob, run_job

PAIRS = (("aleph", "ee_z"), ("sphenix", "pp200"))
WORKERS = (1, 2)


def cpu_seconds() -> float:
    """CPU time (user + system, s) of the calling process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_run(job: SimulationJob, out: Path, workers: int) -> tuple[float, float, list[str]]:
    """Wall seconds for ``job`` on ``workers`` Dask workers, the CPU seconds the workers
    spent, and the shard checksums."""
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("npfm.detectors.production"))  # imports, untimed
        cpu = client.run(cpu_seconds)
        start = time.perf_counter()
        run_job(job, out, scheduler=client)
        elapsed = time.perf_counter() - start
        cpu_used = sum(client.run(cpu_seconds).values()) - sum(cpu.values())
    manifest = json.loads((out / "manifest.json").read_text())
    return elapsed, cpu_used, [shard["sha256"] for shard in manifest["shards"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1600)
    parser.add_argument("--shard-events", type=int, default=200)
    args = parser.parse_args()
    print(f"{args.events} events per pair in shards of {args.shard_events}")
    print(f"{'pair':16s} {'workers':>7s} {'ev/s':>7s} {'ev/s/worker':>11s} "
          f"{'ev/CPU s':>8s} {'speed-up':>8s}")
    for detector, physics in PAIRS:
        job = SimulationJob(detector, physics, args.events, seed=3,
                            shard_events=args.shard_events)
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for workers in WORKERS:
                results[workers] = timed_run(job, Path(tmp) / str(workers), workers)
        if len({tuple(sums) for _, _, sums in results.values()}) != 1:
            raise SystemExit(f"{detector} x {physics}: corpora differ between worker counts")
        t1 = results[WORKERS[0]][0]
        for workers, (elapsed, cpu, _) in results.items():
            rate = args.events / elapsed
            print(f"{detector + ' x ' + physics:16s} {workers:7d} {rate:7.0f} "
                  f"{rate / workers:11.0f} {args.events / cpu:8.0f} {t1 / elapsed:8.2f}")


if __name__ == "__main__":
    main()
