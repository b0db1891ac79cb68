"""Adapter inference against the classical tracker, side by side on the same events.

    .venv/bin/python bench/adapter_inference.py [--events 100] [--size tiny] [--threads 1]

Simulates ``--events`` sPHENIX p+p 200 GeV events (MVTX + INTT + TPC, noise on; Pythia
seed 2), writes them as a corpus in a temporary directory and times, per event and in
events/s (one process, ``--threads`` torch threads):

- the frozen backbone (``--size``, random weights: speed does not depend on them) plus
  each adapter: PID (attention head), noise (linear probe), an event head, and the
  object-condensation tracking head with its read-out, all in batches of 8 events;
- the Hough finder and the GNN (its graph cuts fitted on the first half of the events,
  one epoch: only prediction is timed) on the same events, one event at a time.

Prints a table and the ratio of each tracker's time to the Hough finder's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from npfm.detectors.production import SimulationJob, run_job
from npfm.model.foundation import FoundationModel
from npfm.studies.baselines import as_mapping
from npfm.tasks.backbone import NO_CUT, hit_layers
from npfm.tasks.baselines import GNNTrackFinder, HoughTrackFinder
from npfm.tasks.data import TaskEvent, load_events, pack
from npfm.tasks.fit import make_head
from npfm.tasks.heads import condense
from npfm.tasks.specs import TASKS
from npfm.train.config import PretrainConfig

BATCH = 8


def time_adapter(model: FoundationModel, head: torch.nn.Module, events: list[TaskEvent],
                 instance: bool) -> float:
    """Seconds per event of backbone + head (+ condensation read-out) inference."""
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(events), BATCH):
            batch = pack(events[i:i + BATCH])
            out = head(hit_layers(model, batch), batch.cu_seqlens)
            if instance:
                condense(torch.sigmoid(out[0]), out[1], batch.cu_seqlens, 0.3, 0.6)
    return (time.perf_counter() - start) / len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "sphenix"
        run_job(SimulationJob("sphenix", "pp200", args.events, seed=2, run=2,
                              shard_events=args.events), corpus)
        events = load_events(corpus)
    hits = np.mean([e.n_hits for e in events])
    print(f"{len(events)} sPHENIX pp200 events, {hits:.0f} hits/event on average; "
          f"backbone {args.size}; {args.threads} thread(s)")
    config = PretrainConfig(corpora=({"path": "-", "name": "-"},), size=args.size,
                            max_hits=NO_CUT)
    torch.manual_seed(0)
    model = FoundationModel(config).eval()
    with torch.no_grad():
        probe = hit_layers(model, pack(events[:1]))
    rows: dict[str, float] = {}
    time_adapter(model, make_head(TASKS["noise"], len(probe), probe[0].shape[1], "linear"),
                 events[:BATCH], False)  # warm-up
    for label, task, kind in (("noise, linear probe", "noise", "linear"),
                              ("PID, attention head", "pid", "attention"),
                              ("event head (ee_btag)", "ee_btag", "attention"),
                              ("tracking, condensation head", "tracking", "linear")):
        head = make_head(TASKS[task], len(probe), probe[0].shape[1], kind).eval()
        rows[f"backbone + {label}"] = time_adapter(model, head, events,
                                                   TASKS[task].kind == "instance")
    plain = [as_mapping(e) for e in events]
    hough = HoughTrackFinder()
    gnn = GNNTrackFinder(epochs=1, seed=0)
    gnn.fit(plain[: len(plain) // 2])
    for name, finder in (("Hough finder", hough), ("GNN finder", gnn)):
        start = time.perf_counter()
        for event in plain:
            finder.predict(event)
        rows[name] = (time.perf_counter() - start) / len(plain)
    print("\n| method | ms/event | events/s | time / Hough |")
    print("|---|---:|---:|---:|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {1 / seconds:.1f} | "
              f"{seconds / rows['Hough finder']:.2f} |")


if __name__ == "__main__":
    main()
