"""Electron/pion separation with track and calorimeter: adapters against E/p and a
shower-shape BDT, on the same tracks.

The task ``calo_eid`` (``npfm.tasks.calo``) is scored on the test events' matched tracks
by ``npfm.tasks.fit.score``: pion rejection at 90% electron efficiency (the headline)
and ROC AUC, with 95% event-bootstrap intervals. The baselines (``EOverPCut``: E/p alone;
``ShowerShapeBDT``: gradient-boosted trees on E/p, hadronic/EM energy, cluster width,
core fraction, cells and log p, for each of ``bdt_seeds``) are fitted on the training
events; with ``run`` and ``modes`` set, the adapter cells of those modes (``raw``: the
same head on the raw hit and cell features) are trained on the same events for each of
``seeds``. ``limit`` (events per split) replaces the tasks section's for this task, as
a rejection needs many test pions. The run must be pretrained with cells (listed in the
study's ``pretraining.cells``) for its backbone to see them. Writes ``calo.json``.
"""

from __future__ import annotations

import time
from typing import Any

from npfm.studies.runner import StudyRunner
from npfm.tasks.baselines.calo import EOverPCut, ShowerShapeBDT
from npfm.tasks.fit import score
from npfm.tasks.specs import TASKS

TASK = "calo_eid"


def calo_study(runner: StudyRunner) -> dict[str, Any]:
    """Fit and score the baselines, train the configured adapters; ``calo.json``."""
    cfg = runner.study.calo
    corpus = cfg["corpus"]
    task = TASKS[TASK]
    events = runner.events(TASK, corpus, cfg.get("limit"))
    baselines: dict[str, Any] = {}
    fitted = [("E/p cut", EOverPCut(), None)] + [
        (f"shower-shape BDT, seed {s}", ShowerShapeBDT(seed=int(s)), int(s))
        for s in cfg.get("bdt_seeds", [0])]
    for name, model, seed in fitted:
        runner.progress(f"calorimeter baseline {name}: fit on {len(events['train'])} events")
        start = time.perf_counter()
        model.fit(events["train"])
        fit_s = time.perf_counter() - start
        scores = score(task, events["test"], list(model.predict(events["test"])))
        baselines[name] = {**scores, "fit_seconds": fit_s, "seed": seed}
    result = {"task": TASK, "corpus": corpus, "n_train": len(events["train"]),
              "n_test": len(events["test"]), "baselines": baselines,
              "description": f"{TASK} on the {corpus} test events ({len(events['test'])}), "
                             "per event's matched track; baselines: E/p alone, and boosted "
                             "trees on shower shapes fitted on "
                             f"{len(events['train'])} training events; same tracks and "
                             "scoring as the adapters."}
    runner.cells_beside(TASK, corpus, cfg)
    runner.write("calo", result)
    return result
