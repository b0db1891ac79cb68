"""Train a task head (and, by mode, the backbone) and score it on the test events.

``run_task(task, corpus, run, mode, seed, ...)`` is the whole recipe: load labelled
events, build the backbone for ``mode`` (``npfm.tasks.backbone``), train the head with
AdamW and cosine decay for at most ``steps`` steps on ``n_train`` training events,
evaluating the task's own headline metric on the validation events ten times over the
run (``npfm.tasks.selection``), keep the best evaluation and stop early after
``patience`` evaluations without improvement, and score the test events
(``npfm.tasks.specs``). Condensation thresholds are tuned on the same metric, on a
coarse grid while training and a wide one at the end; a head that collapses raises
``HeadCollapsed``. Classification tasks ranked by macro recall or F1 train with
class-balanced cross-entropy. Frozen modes (and ``raw``) compute features once and
train the head on them, which is exact (the backbone is deterministic in eval mode) and
much faster.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from npfm.events.errors import NpfmError
from npfm.events.shards import sha256_file
from npfm.tasks.backbone import (
    TRAINED_BACKBONE,
    build_backbone,
    hit_layers,
    token_layers,
    trainable,
)
from npfm.tasks.data import TaskEvent, load_events, pack, pack_cells
from npfm.tasks.heads import CondensationHead, EventHead, HitHead, condensation_loss, condense
from npfm.tasks.query_head import QueryOutput, QueryTrackHead, query_decode, query_loss
from npfm.tasks.selection import (
    COARSE_GRID,
    WIDE_GRID,
    check_class_collapse,
    check_collapse,
    headline_value,
    tune_thresholds,
)
from npfm.tasks.specs import (
    IGNORE,
    LOWER_IS_BETTER,
    TASKS,
    Task,
    per_track,
    score_events,
    score_hits,
    score_tracks,
    track_groups,
)
from npfm.train import checkpoint
from npfm.train.guard import require_finite

Features = list[torch.Tensor]


def make_head(task: Task, n_layers: int, width: int, head: str) -> nn.Module:
    """The adapter for ``task``: ``head`` is linear or attention (hit tasks, and the
    condensation head's body), or query (tracking: ``QueryTrackHead``)."""
    if task.kind == "instance":
        if head == "query":
            return QueryTrackHead(n_layers, width)
        return CondensationHead(n_layers, width, kind=head)
    if task.kind == "hit":
        return HitHead(n_layers, width, task.n_out, kind=head, pool_tracks=task.per_track)
    return EventHead(n_layers, width, task.n_out)


def _targets(task: Task, events: Sequence[TaskEvent]) -> torch.Tensor:
    parts = [task.targets(e) for e in events]
    if task.kind == "event_regress":
        return torch.tensor(np.stack(parts), dtype=torch.float32)
    return torch.tensor(np.concatenate(parts), dtype=torch.long)


BALANCED = ("macro_recall", "macro_f1")


def class_weights(task: Task, target: torch.Tensor) -> torch.Tensor | None:
    """Balanced class weights n / (C n_c) over the classes present in ``target`` (absent
    classes weigh 0), for tasks ranked by a macro average; else None."""
    if task.headline not in BALANCED:
        return None
    y = target.flatten()
    counts = torch.bincount(y[y != IGNORE], minlength=task.n_out).float()
    present = counts > 0
    weights = torch.zeros(task.n_out)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def task_loss(task: Task, out: Any, target: torch.Tensor, cu: torch.Tensor,
              scale: torch.Tensor | None, weights: torch.Tensor | None = None
              ) -> torch.Tensor:
    """Cross-entropy (class-weighted with ``weights``), condensation or (standardised)
    mean-squared loss."""
    if isinstance(out, QueryOutput):
        return query_loss(out, target, cu)
    if task.kind == "instance":
        logit, coords = out
        return condensation_loss(logit, coords, target, cu)
    if task.kind == "event_regress":
        assert scale is not None
        mean, std = scale
        ok = torch.isfinite(target)
        return F.mse_loss(out[ok], ((target - mean) / std)[ok])
    return F.cross_entropy(out, target.flatten(), weight=weights, ignore_index=IGNORE)


def task_layers(task: Task, model: nn.Module, events: Sequence[TaskEvent]
                ) -> tuple[Features, torch.Tensor]:
    """Per-layer token features of ``events`` (hits, and cells for tasks that see them)
    and their cu_seqlens."""
    batch = pack(events)
    if task.cells:
        return token_layers(model, batch, pack_cells(events))  # type: ignore[arg-type]
    return hit_layers(model, batch), batch.cu_seqlens  # type: ignore[arg-type]


class Trainer:
    """Holds backbone, head and cached features of one task run."""

    def __init__(self, task: Task, model: nn.Module, head: nn.Module, mode: str,
                 batch_events: int, cache: dict[int, Features] | None = None) -> None:
        self.task, self.model, self.head, self.mode = task, model, head, mode
        self.batch_events = batch_events
        self.cache: dict[int, Features] = {} if cache is None else cache
        self.scale: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None
        self.thresholds = (0.5, 0.8)  # condensation (t_beta, t_distance), tuned on validation

    def features(self, events: Sequence[TaskEvent]) -> tuple[Features, torch.Tensor]:
        if self.mode in TRAINED_BACKBONE:
            return task_layers(self.task, self.model, events)
        missing = [e for e in events if id(e) not in self.cache]
        if missing:
            with torch.no_grad():
                for start in range(0, len(missing), 16):
                    chunk = missing[start:start + 16]
                    layers, cu_t = task_layers(self.task, self.model, chunk)
                    cu = cu_t.tolist()
                    for j, e in enumerate(chunk):
                        self.cache[id(e)] = [x[cu[j]:cu[j + 1]] for x in layers]
        per_event = [self.cache[id(e)] for e in events]
        counts = torch.tensor([len(f[0]) for f in per_event])
        return ([torch.cat([f[i] for f in per_event]) for i in range(len(per_event[0]))],
                torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]))

    def loss(self, events: Sequence[TaskEvent]) -> torch.Tensor:
        layers, cu = self.features(events)
        return task_loss(self.task, self.head(layers, cu, *self.extra(events)),
                         _targets(self.task, events), cu, self.scale, self.weights)

    def extra(self, events: Sequence[TaskEvent]) -> tuple[torch.Tensor, ...]:
        """Inputs of the head beyond the features: each hit's track for per-track tasks."""
        if self.task.per_track:
            return (torch.from_numpy(track_groups(list(events))),)
        return ()

    def predict(self, events: Sequence[TaskEvent]) -> list[Any]:
        """Per-event outputs: class probabilities, regression values or track labels."""
        self.head.eval()
        self.model.eval()
        out: list[Any] = []
        with torch.no_grad():
            for start in range(0, len(events), self.batch_events):
                chunk = events[start:start + self.batch_events]
                layers, cu = self.features(chunk)
                y = self.head(layers, cu, *self.extra(chunk))
                if isinstance(y, QueryOutput):
                    labels = query_decode(y, cu)
                    out += [labels[cu[i]:cu[i + 1]].numpy() for i in range(len(chunk))]
                elif self.task.kind == "instance":
                    labels = condense(torch.sigmoid(y[0]), y[1], cu, *self.thresholds)
                    out += [labels[cu[i]:cu[i + 1]].numpy() for i in range(len(chunk))]
                elif self.task.kind == "hit":
                    prob = torch.softmax(y, -1)
                    out += [prob[cu[i]:cu[i + 1]].numpy() for i in range(len(chunk))]
                elif self.task.kind == "event_class":
                    out += list(torch.softmax(y, -1).numpy())
                else:
                    assert self.scale is not None
                    out += list((y * self.scale[1] + self.scale[0]).numpy())
        return out

    def condensation(self, events: Sequence[TaskEvent]
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """beta (N,), coordinates (N, dim) and cu_seqlens of ``events`` (no grad)."""
        self.head.eval()
        self.model.eval()
        betas, coords, counts = [], [], [0]
        with torch.no_grad():
            for start in range(0, len(events), self.batch_events):
                layers, cu = self.features(events[start:start + self.batch_events])
                logit, x = self.head(layers, cu)
                betas.append(torch.sigmoid(logit))
                coords.append(x)
                counts += (cu[1:] - cu[:-1]).tolist()
        return torch.cat(betas), torch.cat(coords), torch.cumsum(torch.tensor(counts), 0)

    def evaluate(self, val: Sequence[TaskEvent],
                 grid: Sequence[tuple[float, float]] = COARSE_GRID) -> float:
        """The headline metric on ``val`` (condensation thresholds tuned on ``grid``)."""
        if isinstance(self.head, CondensationHead):
            self.thresholds, value = tune_thresholds(self.task, val, *self.condensation(val),
                                                     grid)
            return value
        return headline_value(self.task, val, self.predict(val))

    def fit(self, train: Sequence[TaskEvent], val: Sequence[TaskEvent], steps: int,
            lr: float, seed: int, progress: Callable[[int], None] | None = None,
            patience: int = 4) -> dict:
        """AdamW with cosine decay; keeps the weights of the best validation headline and
        stops after ``patience`` evaluations (10 per run) without improvement."""
        if self.task.kind == "event_regress":
            t = _targets(self.task, train)
            self.scale = torch.stack([torch.nanmean(t, 0),
                                      torch.from_numpy(np.nanstd(t.numpy(), 0)).clamp_min(1e-6)])
        self.weights = class_weights(self.task, _targets(self.task, train))
        params = trainable(self.head) + trainable(self.model)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
        gen = np.random.default_rng(seed)
        initial = self.evaluate(val)
        best = (initial, 0, self.thresholds, copy.deepcopy(self._state()))
        every, stale, step = max(steps // 10, 1), 0, 0
        for step in range(1, steps + 1):
            self.head.train()
            self.model.train(self.mode in TRAINED_BACKBONE)
            pick = gen.choice(len(train), min(self.batch_events, len(train)), replace=False)
            loss = self.loss([train[i] for i in pick])
            require_finite(loss, "task loss", f"task {self.task.name}", step)
            opt.zero_grad()
            loss.backward()
            require_finite(nn.utils.clip_grad_norm_(params, 1.0), "gradient norm",
                           f"task {self.task.name}", step)
            opt.step()
            sched.step()
            if progress is not None:
                progress(step)
            if step % every == 0 or step == steps:
                value = self.evaluate(val)
                stale += 1
                if value > best[0]:
                    best, stale = (value, step, self.thresholds,
                                   copy.deepcopy(self._state())), 0
                if stale >= patience:
                    break
        self._load(best[3])
        self.thresholds = best[2]
        out: dict[str, Any] = {
            "initial_val_headline": self._shown(initial), "best_step": best[1],
            "steps_run": step, "best_val_headline": self._shown(best[0]),
            "val_loss": self.validation_loss(val)}
        if self.task.kind == "event_class":
            out.update(check_class_collapse(self.task.name, self.mode,
                                            np.stack(self.predict(val))))
        if isinstance(self.head, QueryTrackHead):
            found = self.predict(val)
            out["tracks_per_event"] = float(np.mean([len(np.unique(x[x >= 0])) for x in found]))
        elif self.task.kind == "instance":
            beta, coords, cu = self.condensation(val)
            self.thresholds, value = tune_thresholds(self.task, val, beta, coords, cu,
                                                     WIDE_GRID)
            labels = condense(beta, coords, cu, *self.thresholds)
            out.update(best_val_headline=self._shown(value), thresholds=list(self.thresholds),
                       **check_collapse(self.task.name, self.mode, beta, labels, cu))
        return out

    def _shown(self, value: float) -> float | None:
        """An oriented ``headline_value`` back in the metric's own sign (None if NaN)."""
        value = -value if self.task.headline in LOWER_IS_BETTER else value
        return float(value) if np.isfinite(value) else None

    def validation_loss(self, val: Sequence[TaskEvent]) -> float:
        self.head.eval()
        self.model.eval()
        with torch.no_grad():
            losses = [float(self.loss(val[i:i + self.batch_events]))
                      for i in range(0, len(val), self.batch_events)]
        return float(np.mean(losses))

    def _state(self) -> dict[str, Any]:
        trained = self.mode in TRAINED_BACKBONE
        return {"head": self.head.state_dict(),
                "model": dict(self.model.state_dict()) if trained else {}}

    def _load(self, state: dict[str, Any]) -> None:
        self.head.load_state_dict(state["head"])
        if state["model"]:
            self.model.load_state_dict(state["model"])


def score(task: Task, events: Sequence[TaskEvent], outputs: list[Any]) -> dict[str, Any]:
    """Scores of per-event outputs against the events' targets."""
    if task.kind == "instance":
        return score_tracks(task, list(events), outputs)
    if task.per_track:
        truth, prob, index = per_track(task, list(events), np.concatenate(outputs))
        return score_hits(task, truth, prob, index)
    if task.kind == "hit":
        truth = np.concatenate([task.targets(e) for e in events])
        index = np.concatenate([np.full(e.n_hits, i) for i, e in enumerate(events)])
        return score_hits(task, truth, np.concatenate(outputs), index)
    truth = np.stack([task.targets(e) for e in events]).astype(np.float64)
    return score_events(task, truth, np.stack(outputs))


def run_task(task_name: str, corpus: Path, run: Path, mode: str = "frozen", seed: int = 1,
             n_train: int | None = None, steps: int = 300, lr: float = 3e-3,
             head: str = "attention", batch_events: int = 8,
             events: dict[str, list[TaskEvent]] | None = None,
             cache: dict[int, Features] | None = None,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train and score one task; returns scores with their provenance.

    ``cache`` holds frozen features by event (``id``) and may be shared between calls
    with the same backbone (same run and mode, and seed for ``adapter_only``).
    """
    if task_name not in TASKS:
        raise NpfmError(f"task {task_name!r}", "unknown task", f"use {', '.join(TASKS)}")
    task = TASKS[task_name]
    if events is None:
        events = split_events(task, corpus)
    train = events["train"][:n_train] if n_train else events["train"]
    if not train or not events["validation"] or not events["test"]:
        raise NpfmError(str(corpus), f"task {task_name} needs train, validation and test "
                        "events with targets", "use a larger corpus of the task's detector")
    torch.manual_seed(seed)
    model = build_backbone(mode, run, seed)
    with torch.no_grad():
        probe, _ = task_layers(task, model, train[:1])
    adapter = make_head(task, len(probe), probe[0].shape[1], head)
    trainer = Trainer(task, model, adapter, mode, batch_events, cache)
    start = time.perf_counter()
    fitted = trainer.fit(train, events["validation"], steps, lr, seed, progress)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    outputs = trainer.predict(events["test"])
    infer_s = time.perf_counter() - start
    latest = None if mode == "raw" else checkpoint.latest(run)
    return {
        "task": task_name, "mode": mode, "head": head, "seed": seed, "n_train": len(train),
        "n_test": len(events["test"]), "steps": steps, "lr": lr, **fitted,
        "scores": score(task, events["test"], outputs), "headline": task.headline,
        "train_seconds": train_s, "test_events_per_second": len(events["test"]) / infer_s,
        "trainable_parameters": sum(p.numel() for p in trainable(adapter) + trainable(model)),
        "provenance": {"corpus": str(corpus), "corpus_manifest_sha256": sha256_file(
            Path(corpus) / "manifest.json"), "run": str(run), "checkpoint": str(latest),
            "checkpoint_sha256": sha256_file(latest / "model.safetensors") if latest else None,
            "pretrained": mode in ("frozen", "lora", "full")},
    }


def split_events(task: Task, corpus: Path, limit: int | None = None
                 ) -> dict[str, list[TaskEvent]]:
    """The corpus's events by split, keeping those with a usable target."""
    out: dict[str, list[TaskEvent]] = {"train": [], "validation": [], "test": []}
    for event in load_events(corpus, subsystems=task.subsystems, limit=limit, min_hits=2,
                             cells=task.cells):
        target = task.targets(event)
        usable = (np.isfinite(target).all() if task.kind == "event_regress"
                  else (target != IGNORE).any())
        if usable and (task.kind != "instance" or (target >= 0).any()):
            out[event.split].append(event)
    return out
