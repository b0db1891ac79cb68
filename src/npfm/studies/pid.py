"""Particle identification: adapters against the classical dE/dx baseline, same tracks.

The per-track task (``pid_track``) is scored on the test events' tracks. The classical
baseline (``npfm.tasks.baselines.pid.DedxPID``: fitted momentum and truncated-mean TPC
dE/dx, gradient-boosted trees) is fitted on the training events and scored by the same
``npfm.tasks.fit.score``; with ``run`` and ``modes`` set, the adapter cells of those
modes (``raw``: the same head on standardised raw hit features) are trained on the same
events for each of ``seeds``. Writes ``pid.json``.
"""

from __future__ import annotations

import time
from typing import Any

from npfm.studies.runner import StudyRunner
from npfm.tasks.baselines.pid import DedxPID
from npfm.tasks.fit import score
from npfm.tasks.specs import TASKS


def pid_study(runner: StudyRunner) -> dict[str, Any]:
    """Fit and score the dE/dx baseline, train the configured adapters; ``pid.json``."""
    cfg = runner.study.pid
    task, corpus = cfg.get("task", "pid_track"), cfg["corpus"]
    events = runner.events(task, corpus)
    runner.progress(f"PID baseline (dE/dx): fit on {len(events['train'])} events")
    start = time.perf_counter()
    baseline = DedxPID(TASKS[task], seed=int(cfg.get("seed", 0))).fit(events["train"])
    fit_s = time.perf_counter() - start
    scores = score(TASKS[task], events["test"], [baseline.predict(e) for e in events["test"]])
    result = {"task": task, "corpus": corpus, "n_train": len(events["train"]),
              "n_test": len(events["test"]), "seed": int(cfg.get("seed", 0)),
              "baseline": {**scores, "fit_seconds": fit_s},
              "description": f"{task} on the {corpus} test events ({len(events['test'])}); "
                             "baseline: fitted momentum and truncated-mean TPC dE/dx, "
                             f"gradient-boosted trees fitted on {len(events['train'])} "
                             "training events; same tracks and scoring as the adapters."}
    runner.cells_beside(task, corpus, cfg)
    runner.write("pid", result)
    return result
