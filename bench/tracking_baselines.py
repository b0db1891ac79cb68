"""Tracking baselines on simulated sPHENIX p+p 200 GeV events: quality and CPU time.

    .venv/bin/python bench/tracking_baselines.py [--train 300] [--test 300] [--json OUT]

Generates ``--train`` events (Pythia seed ``--train-seed``) and ``--test`` events (seed
``--test-seed``) of ``pp200`` through the sPHENIX fast simulation (MVTX + INTT + TPC, noise
on). DBSCAN (eps and eta weight) and the GNN (one per seed of ``--gnn-seeds``, with
``--gnn-epochs``) are fitted on the training events; the Hough finder has nothing to fit.
Every finder is scored on the test events with ``evaluate_tracking`` (95 % event-bootstrap
intervals, ``--boot`` replicates, bootstrap seed 0), then timed over the test events: wall
and CPU (process) seconds per event and events/s, one intra-op torch thread. Prints the
tables; ``--json`` writes all figures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from npfm.detectors import simulate_events
from npfm.events.shards import atomic_write_json
from npfm.physics import generate
from npfm.tasks.baselines import (
    DBSCANTrackFinder,
    GNNTrackFinder,
    HoughTrackFinder,
    TrackFinder,
    evaluate_tracking,
)

METRICS = ("ari_mean", "ari_pooled", "ari_exclude", "efficiency", "purity", "fake_rate",
           "duplicate_rate", "trackml")


def sphenix_pp200(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` simulated sPHENIX p+p 200 GeV events (Pythia seed and simulation seed ``seed``)."""
    generated = list(generate("pp200", n, seed=seed))
    return simulate_events(generated, "sphenix", np.random.default_rng(seed),
                           include_objects=False)


def describe(events: list[dict[str, Any]]) -> dict[str, float]:
    """Mean hits, noise hits and particles with >= 3 hits per event."""
    hits = [len(e["hit_x"]) for e in events]
    noise = [int((e["hit_particle"] < 0).sum()) for e in events]
    tracks = [int((np.bincount(e["hit_particle"][e["hit_particle"] >= 0]) >= 3).sum())
              for e in events]
    return {"hits": float(np.mean(hits)), "hits_max": float(np.max(hits)),
            "noise_hits": float(np.mean(noise)), "particles_3hits": float(np.mean(tracks))}


def time_finder(finder: TrackFinder, events: list[dict[str, Any]]) -> dict[str, float]:
    """Wall and CPU seconds per event of ``predict`` over ``events``."""
    wall, cpu = time.perf_counter(), time.process_time()
    for event in events:
        finder.predict(event)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s_per_event": wall / len(events), "cpu_s_per_event": cpu / len(events),
            "events_per_s": len(events) / wall}


def fmt(ci: dict[str, float]) -> str:
    return f"{ci['value']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--train-seed", type=int, default=1)
    parser.add_argument("--test-seed", type=int, default=2)
    parser.add_argument("--gnn-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--gnn-epochs", type=int, default=10)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, test = sphenix_pp200(args.train, args.train_seed), sphenix_pp200(args.test,
                                                                           args.test_seed)
    data = {"train": describe(train), "test": describe(test)}
    print(f"events: train {args.train} (seed {args.train_seed}), test {args.test} "
          f"(seed {args.test_seed}); test {data['test']}")
    finders: list[Any] = [HoughTrackFinder(), DBSCANTrackFinder()]
    for seed in args.gnn_seeds:
        gnn = GNNTrackFinder(seed=seed, epochs=args.gnn_epochs)
        gnn.name = f"gnn-seed{seed}"
        finders.append(gnn)
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                               "data": data, "finders": {}}
    for finder in finders:
        start = time.perf_counter()
        finder.fit(train)
        fit_s = time.perf_counter() - start
        out = evaluate_tracking(finder, test, n_boot=args.boot)
        out.update(time_finder(finder, test), fit_seconds=fit_s)
        if isinstance(finder, GNNTrackFinder):
            out["edges"] = finder.edge_metrics(test)
            out["losses"] = finder.losses
        if isinstance(finder, DBSCANTrackFinder):
            out["chosen"] = {"eps": finder.eps, "eta_weight": finder.eta_weight}
            print(f"dbscan: eps {finder.eps}, eta weight {finder.eta_weight}")
        results["finders"][finder.name] = out
        print(f"{finder.name}: fitted in {fit_s:.1f} s", flush=True)
    print("\n| finder | " + " | ".join(METRICS) + " |")
    print("|---" * (len(METRICS) + 1) + "|")
    for name, out in results["finders"].items():
        print(f"| {name} | " + " | ".join(fmt(out[m]) for m in METRICS) + " |")
    print("\n| finder | wall s/event | CPU s/event | events/s | fit s |")
    print("|---|---:|---:|---:|---:|")
    for name, out in results["finders"].items():
        print(f"| {name} | {out['wall_s_per_event']:.4f} | {out['cpu_s_per_event']:.4f} | "
              f"{out['events_per_s']:.1f} | {out['fit_seconds']:.1f} |")
    for name, out in results["finders"].items():
        for key in ("efficiency_vs_pt", "efficiency_vs_eta"):
            print(f"{name} {key}: " + ", ".join(
                f"[{b['lo']:g}, {b['hi']:g}) {fmt(b['efficiency'])} (n={b['n_particles']})"
                for b in out[key] if "efficiency" in b))
    for name, out in results["finders"].items():
        if "edges" in out:
            print(f"{name} edges: {out['edges']}")
    if args.json:
        atomic_write_json(args.json, results)


if __name__ == "__main__":
    main()
