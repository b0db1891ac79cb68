"""Shared machinery of the studies: pretraining runs, task cells and their results.

A *cell* is one (task, corpus, run, mode, seed, n_train) training and evaluation
(``npfm.tasks.fit.run_task``). Cells append to ``<out>/cells.jsonl`` as they finish; a
study started again skips the cells already there, so a killed study resumes. Events
and frozen features are cached in memory across cells that share them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from npfm.events.shards import atomic_write_json
from npfm.studies.config import StudyConfig
from npfm.tasks.data import TaskEvent
from npfm.tasks.fit import Features, run_task, split_events
from npfm.tasks.specs import LOWER_IS_BETTER, TASKS
from npfm.train import checkpoint
from npfm.train.loop import pretrain

Progress = Callable[[str], None]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def cell_key(task: str, corpus: str, run: str, mode: str, seed: int, n_train: int | None
             ) -> str:
    return f"{task}|{corpus}|{run}|{mode}|{seed}|{n_train}"


class StudyRunner:
    """Runs cells of a study into ``out``, pretraining the runs it needs first."""

    def __init__(self, study: StudyConfig, out: Path, progress: Progress | None = None
                 ) -> None:
        self.study, self.out = study, Path(out)
        self.progress = progress or (lambda message: None)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = self.out / "cells.jsonl"
        self.done: dict[str, dict[str, Any]] = {}
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.done[row["key"]] = row
        self._events: dict[tuple[str, str], dict[str, list[TaskEvent]]] = {}
        self._features: dict[tuple[str, str, str, int, str], dict[int, Features]] = {}

    def run_dir(self, run: str, progress: Callable[[int, dict[str, Any]], None] | None = None
                ) -> Path:
        """The pretraining run, trained (or resumed) to the configured steps if needed;
        ``progress(step, metrics)`` as in ``npfm.train.loop.pretrain``."""
        path = self.out / "runs" / run
        latest = checkpoint.latest(path)
        config = self.study.pretrain_config(run)
        if latest is None or int(latest.name[5:]) < config.steps:
            self.progress(f"pretraining {run} ({config.steps} steps)")
            pretrain(config, path, progress=progress)
        return path

    def events(self, task: str, corpus: str, limit: dict[str, int] | None = None
               ) -> dict[str, list[TaskEvent]]:
        """The task's events of ``corpus`` by split, cut to ``limit`` (default the tasks
        section's); cached, so the first call's limit holds for the pair."""
        key = (task, corpus)
        if key not in self._events:
            limit = self.study.tasks.get("limit", {}) if limit is None else limit
            events = split_events(TASKS[task], self.study.corpora[corpus])
            self._events[key] = {s: v[:limit[s]] if s in limit else v
                                 for s, v in events.items()}
        return self._events[key]

    def cell(self, task: str, corpus: str, run: str, mode: str, seed: int,
             n_train: int | None = None) -> dict[str, Any]:
        """One trained and scored cell (from the log if already done)."""
        key = cell_key(task, corpus, run, mode, seed, n_train)
        if key in self.done:
            return self.done[key]
        self.progress(f"{task} on {corpus}: {mode} head, run {run}, seed {seed}"
                      + (f", {n_train} training events" if n_train else ""))
        settings = self.study.tasks
        feature_seed = seed if mode == "adapter_only" else 0
        subsystems = ",".join(TASKS[task].subsystems or ())
        cache = self._features.setdefault((run, corpus, mode, feature_seed, subsystems), {})
        result = run_task(task, self.study.corpora[corpus], self.run_dir(run), mode=mode,
                          seed=seed, n_train=n_train, steps=int(settings.get("steps", 150)),
                          lr=float(settings.get("lr", 3e-3)),
                          head=str(settings.get("head", "attention")),
                          batch_events=int(settings.get("batch_events", 8)),
                          events=self.events(task, corpus), cache=cache)
        row = {"key": key, "corpus_name": corpus, "run_name": run, **result}
        with self.log.open("a") as fh:
            fh.write(json.dumps(row, default=_json_default) + "\n")
        self.done[key] = json.loads(json.dumps(row, default=_json_default))
        return self.done[key]

    def cells_beside(self, task: str, corpus: str, section: dict[str, Any]) -> None:
        """The adapter cells a baseline section asks for: each of its ``modes`` on its
        ``run`` (none without one), for each of its ``seeds`` (default [1])."""
        for seed in section.get("seeds", [1]):
            for mode in section.get("modes", []) if "run" in section else []:
                self.cell(task, corpus, section["run"], mode, int(seed))

    def write(self, name: str, payload: dict[str, Any]) -> Path:
        """Write ``<out>/<name>.json`` atomically."""
        path = self.out / f"{name}.json"
        atomic_write_json(path, json.loads(json.dumps(payload, default=_json_default)))
        return path


def headline(row: dict[str, Any]) -> dict[str, float]:
    """The cell's headline score as {value, lo, hi}."""
    score = row["scores"][row["headline"]]
    if isinstance(score, dict):
        return {k: float(score[k]) for k in ("value", "lo", "hi")}
    return {"value": float(score), "lo": float("nan"), "hi": float("nan")}


def combine(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Seeds of one setting: mean headline value; the interval is the envelope of the
    seeds' 95% event-bootstrap intervals (conservative)."""
    scores = [headline(r) for r in rows]
    values = [s["value"] for s in scores]
    return {"value": float(np.mean(values)), "lo": float(np.nanmin([s["lo"] for s in scores])),
            "hi": float(np.nanmax([s["hi"] for s in scores])), "seeds": [r["seed"] for r in rows],
            "seed_std": float(np.std(values)) if len(values) > 1 else 0.0,
            "metric": rows[0]["headline"], "n_test": rows[0]["n_test"]}


def better(a: dict[str, Any], b: dict[str, Any], metric: str) -> bool:
    """``a`` beats ``b`` beyond noise: a's whole interval is better than b's value."""
    if any(math.isnan(x) for x in (a["lo"], a["hi"], b["value"])):
        return False
    if metric in LOWER_IS_BETTER:
        return a["hi"] < b["value"]
    return a["lo"] > b["value"]
