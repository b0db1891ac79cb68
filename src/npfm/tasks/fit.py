"""Train a task head (and, by mode, the backbone) and score it on the test events.

``run_task(task, corpus, run, mode, seed, ...)`` is the whole recipe: load labelled
events, build the backbone for ``mode`` (``npfm.tasks.backbone``), train the head with
AdamW for a fixed number of steps on ``n_train`` training events, pick the step with the
lowest validation loss, and score the test events (``npfm.tasks.specs``). Frozen modes
compute backbone features once and train the head on them, which is exact (the
backbone is deterministic in eval mode) and much faster.
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
from npfm.tasks.backbone import TRAINED_BACKBONE, build_backbone, hit_layers, trainable
from npfm.tasks.data import TaskEvent, load_events, pack
from npfm.tasks.heads import CondensationHead, EventHead, HitHead, condensation_loss, condense
from npfm.tasks.specs import (
    IGNORE,
    TASKS,
    Task,
    mean_ari,
    score_events,
    score_hits,
    score_tracks,
)
from npfm.train import checkpoint

Features = list[torch.Tensor]


def make_head(task: Task, n_layers: int, width: int, head: str) -> nn.Module:
    """The adapter for ``task``: ``head`` is linear or attention for hit tasks."""
    if task.kind == "instance":
        return CondensationHead(n_layers, width, kind=head)
    if task.kind == "hit":
        return HitHead(n_layers, width, task.n_out, kind=head)
    return EventHead(n_layers, width, task.n_out)


def _targets(task: Task, events: Sequence[TaskEvent]) -> torch.Tensor:
    parts = [task.targets(e) for e in events]
    if task.kind == "event_regress":
        return torch.tensor(np.stack(parts), dtype=torch.float32)
    return torch.tensor(np.concatenate(parts), dtype=torch.long)


def task_loss(task: Task, out: Any, target: torch.Tensor, cu: torch.Tensor,
              scale: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy, condensation or (standardised) mean-squared loss."""
    if task.kind == "instance":
        beta, coords = out
        return condensation_loss(beta, coords, target, cu)
    if task.kind == "event_regress":
        assert scale is not None
        mean, std = scale
        ok = torch.isfinite(target)
        return F.mse_loss(out[ok], ((target - mean) / std)[ok])
    return F.cross_entropy(out, target.flatten(), ignore_index=IGNORE)


class Trainer:
    """Holds backbone, head and cached features of one task run."""

    def __init__(self, task: Task, model: nn.Module, head: nn.Module, mode: str,
                 batch_events: int, cache: dict[int, Features] | None = None) -> None:
        self.task, self.model, self.head, self.mode = task, model, head, mode
        self.batch_events = batch_events
        self.cache: dict[int, Features] = {} if cache is None else cache
        self.scale: torch.Tensor | None = None
        self.thresholds = (0.5, 0.8)  # condensation (t_beta, t_distance), tuned on validation

    def features(self, events: Sequence[TaskEvent]) -> tuple[Features, torch.Tensor]:
        batch = pack(events)
        if self.mode in TRAINED_BACKBONE:
            return hit_layers(self.model, batch), batch.cu_seqlens  # type: ignore[arg-type]
        missing = [e for e in events if id(e) not in self.cache]
        if missing:
            with torch.no_grad():
                for start in range(0, len(missing), 16):
                    chunk = missing[start:start + 16]
                    layers = hit_layers(self.model, pack(chunk))  # type: ignore[arg-type]
                    cu = pack(chunk).cu_seqlens.tolist()
                    for j, e in enumerate(chunk):
                        self.cache[id(e)] = [x[cu[j]:cu[j + 1]] for x in layers]
        per_event = [self.cache[id(e)] for e in events]
        return ([torch.cat([f[i] for f in per_event]) for i in range(len(per_event[0]))],
                batch.cu_seqlens)

    def loss(self, events: Sequence[TaskEvent]) -> torch.Tensor:
        layers, cu = self.features(events)
        return task_loss(self.task, self.head(layers, cu), _targets(self.task, events), cu,
                         self.scale)

    def predict(self, events: Sequence[TaskEvent]) -> list[Any]:
        """Per-event outputs: class probabilities, regression values or track labels."""
        self.head.eval()
        self.model.eval()
        out: list[Any] = []
        with torch.no_grad():
            for start in range(0, len(events), self.batch_events):
                chunk = events[start:start + self.batch_events]
                layers, cu = self.features(chunk)
                y = self.head(layers, cu)
                if self.task.kind == "instance":
                    labels = condense(y[0], y[1], cu, *self.thresholds)
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

    def fit(self, train: Sequence[TaskEvent], val: Sequence[TaskEvent], steps: int,
            lr: float, seed: int, progress: Callable[[int], None] | None = None) -> dict:
        """AdamW with cosine decay; keeps the weights of the best validation loss."""
        if self.task.kind == "event_regress":
            t = _targets(self.task, train)
            self.scale = torch.stack([torch.nanmean(t, 0),
                                      torch.from_numpy(np.nanstd(t.numpy(), 0)).clamp_min(1e-6)])
        params = trainable(self.head) + trainable(self.model)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
        gen = np.random.default_rng(seed)
        initial = self.validation_loss(val)
        best = (initial, 0, copy.deepcopy(self._state()))
        every = max(steps // 5, 1)
        for step in range(1, steps + 1):
            self.head.train()
            self.model.train(self.mode in TRAINED_BACKBONE)
            pick = gen.choice(len(train), min(self.batch_events, len(train)), replace=False)
            loss = self.loss([train[i] for i in pick])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            if step % every == 0 or step == steps:
                val_loss = self.validation_loss(val)
                if val_loss < best[0]:
                    best = (val_loss, step, copy.deepcopy(self._state()))
            if progress is not None:
                progress(step)
        self._load(best[2])
        if self.task.kind == "instance":
            self.tune_thresholds(val)
        return {"initial_val_loss": initial, "best_step": best[1], "best_val_loss": best[0],
                "thresholds": list(self.thresholds)}

    def tune_thresholds(self, val: Sequence[TaskEvent]) -> None:
        """Condensation thresholds of the best validation ARI (per-event mean)."""
        best = (-2.0, self.thresholds)
        for t_beta in (0.1, 0.3, 0.6):
            for t_distance in (0.3, 0.6, 1.0):
                self.thresholds = (t_beta, t_distance)
                ari = mean_ari(list(val), self.predict(val))
                if ari > best[0]:
                    best = (ari, self.thresholds)
        self.thresholds = best[1]

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
        probe = hit_layers(model, pack(train[:1]))
    adapter = make_head(task, len(probe), probe[0].shape[1], head)
    trainer = Trainer(task, model, adapter, mode, batch_events, cache)
    start = time.perf_counter()
    fitted = trainer.fit(train, events["validation"], steps, lr, seed, progress)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    outputs = trainer.predict(events["test"])
    infer_s = time.perf_counter() - start
    latest = checkpoint.latest(run)
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
    for event in load_events(corpus, subsystems=task.subsystems, limit=limit, min_hits=2):
        target = task.targets(event)
        usable = (np.isfinite(target).all() if task.kind == "event_regress"
                  else (target != IGNORE).any())
        if usable and (task.kind != "instance" or (target >= 0).any()):
            out[event.split].append(event)
    return out
