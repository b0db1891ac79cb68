"""Tracking baselines on the studies' own events, scored exactly as the adapters are.

The classical Hough finder, DBSCAN on raw coordinates and the interaction-network GNN
(``npfm.tasks.baselines``) are fitted on the task's training events, run on its test
events and scored by ``npfm.tasks.specs.score_tracks`` (same truth: noise and low-pT hits
are background), so the numbers sit beside the foundation-model cells of the report.
With ``run`` and ``modes`` set, the adapter cells of those modes (``raw``: the same head
on standardised raw hit features, no backbone) are trained on the same events for each
of ``seeds``, so the report's tracking table holds all of them side by side.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from npfm.events import vocabulary
from npfm.studies.runner import StudyRunner
from npfm.tasks.baselines import DBSCANTrackFinder, GNNTrackFinder, HoughTrackFinder
from npfm.tasks.baselines.events import TrackFinder
from npfm.tasks.data import PARTICLE_COLUMNS, TaskEvent
from npfm.tasks.specs import TASKS, score_tracks

FINDERS = ("hough", "dbscan", "gnn")


def as_mapping(event: TaskEvent) -> dict[str, Any]:
    """A task event as the baselines' plain mapping (subsystem names, truth arrays)."""
    names = np.array(vocabulary.names("subsystems"))
    out: dict[str, Any] = {k: event.hit(k) for k in ("hit_x", "hit_y", "hit_z", "hit_layer",
                                                      "hit_particle")}
    out["hit_subsystem"] = names[event.hit("hit_subsystem")]
    out.update({k: event.particles.get(k, np.zeros(0)) for k in PARTICLE_COLUMNS})
    out.update({k: event.info.get(k) for k in ("magnetic_field", "vertex_x", "vertex_y",
                                               "vertex_z", "run", "event")})
    return out


def make_finder(name: str, geometry: str, seed: int) -> TrackFinder:
    if name == "hough":
        return HoughTrackFinder(geometry=geometry)
    if name == "dbscan":
        return DBSCANTrackFinder()
    if name == "gnn":
        return GNNTrackFinder(geometry=geometry, seed=seed)
    raise ValueError(f"unknown finder {name!r}; use {', '.join(FINDERS)}")


def tracking_baselines(runner: StudyRunner) -> dict[str, Any]:
    """Fit, run and score every finder; writes ``baselines.json``."""
    cfg = runner.study.baselines
    task, corpus = cfg["task"], cfg["corpus"]
    events = runner.events(task, corpus)
    geometry = str(events["test"][0].info["geometry_id"])
    train = [as_mapping(e) for e in events["train"]]
    test = [as_mapping(e) for e in events["test"]]
    finders: dict[str, Any] = {}
    for name in cfg.get("finders", FINDERS):
        runner.progress(f"baseline {name}: fit on {len(train)} events, run on {len(test)}")
        finder = make_finder(name, geometry, int(cfg.get("seed", 0)))
        start = time.perf_counter()
        finder.fit(train)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        labels = [np.asarray(finder.predict(e), np.int64) for e in test]
        per_event = (time.perf_counter() - start) / len(test)
        scores = score_tracks(TASKS[task], events["test"], labels)
        finders[name] = {**scores, "seconds_per_event": per_event, "fit_seconds": fit_s}
    result = {"task": task, "corpus": corpus, "n_train": len(train), "n_test": len(test),
              "seed": int(cfg.get("seed", 0)), "finders": finders,
              "description": f"{task} on the {corpus} test events ({len(test)}), fitted on "
                             f"{len(train)} training events (GNN seed {cfg.get('seed', 0)}); "
                             "same truth and scoring as the adapters."}
    runner.cells_beside(task, corpus, cfg)
    runner.write("baselines", result)
    return result
