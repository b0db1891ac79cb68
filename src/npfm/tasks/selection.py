"""Model selection on a task's own headline metric: point values on validation events.

Checkpoints are chosen, and condensation thresholds tuned, on the metric the task is
ranked by (``Task.headline``), computed without bootstrap intervals (those are for the
test events). ``headline_value`` is oriented so that higher is always better (a
lower-is-better metric such as a resolution is negated).

A condensation head whose hits never pass the lowest beta threshold finds no track: a
collapse, not a score. ``check_collapse`` raises ``HeadCollapsed`` with the evidence
(largest beta, tracks found per event), so no 0.000 is reported from a dead head;
``check_class_collapse`` does the same for a classifier whose outputs are all equal.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from npfm.events.errors import NpfmError
from npfm.tasks import stat_metrics
from npfm.tasks.calo import rejection_at_efficiency
from npfm.tasks.data import TaskEvent
from npfm.tasks.heads import condense
from npfm.tasks.specs import IGNORE, LOWER_IS_BETTER, Task, mean_ari, per_track

#: Condensation (t_beta, t_distance) grids: coarse while training, wide at the end.
COARSE_GRID = tuple(itertools.product((0.2, 0.5), (0.3, 0.7)))
WIDE_GRID = tuple(itertools.product((0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9),
                                    (0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4)))


class HeadCollapsed(NpfmError):
    """A condensation head that finds no track on the validation events."""


def _ari(task: Task, events: Sequence[TaskEvent], labels: Sequence[np.ndarray]) -> float:
    """Per-event mean ARI, on the silicon hits when that is the task's headline."""
    return mean_ari(events, labels, silicon_only=task.headline == "silicon_ari")


def headline_value(task: Task, events: Sequence[TaskEvent], outputs: Sequence[Any]) -> float:
    """The task's headline metric on ``events`` (higher is better; NaN if undefined)."""
    if task.kind == "instance":
        return _ari(task, events, outputs)
    if task.per_track:
        y, p, _ = per_track(task, list(events), np.concatenate(outputs))
    elif task.kind == "hit":
        y = np.concatenate([task.targets(e) for e in events])
        p = np.concatenate(outputs)
        keep = y != IGNORE
        y, p = y[keep], p[keep]
    else:
        y = np.stack([task.targets(e) for e in events])
        p = np.stack(outputs)
        if task.kind == "event_class":
            keep = y[:, 0] != IGNORE
            y, p = y[keep, 0], p[keep]
    if task.kind == "event_regress":
        ok = np.isfinite(y[:, 0])
        value = stat_metrics.regression_report(y[ok, 0], p[ok, 0])["resolution"]
    elif task.headline == "auc":
        value = stat_metrics.binary_auc(y, p[:, 1])
    elif task.headline == "rejection_at_90":
        value = rejection_at_efficiency(y, p[:, 1])
    elif task.headline in ("macro_recall", "macro_f1"):
        report = stat_metrics.classification_report(y, p.argmax(1), task.n_out)
        r, pr = report["macro_recall"], report["macro_precision"]
        value = r if task.headline == "macro_recall" else (2 * r * pr / (r + pr) if r + pr
                                                           else 0.0)
    else:
        value = float(np.mean(p.argmax(1) == y))
    return -value if task.headline in LOWER_IS_BETTER else value


def tune_thresholds(task: Task, events: Sequence[TaskEvent], beta: torch.Tensor,
                    coords: torch.Tensor, cu_seqlens: torch.Tensor,
                    grid: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], float]:
    """The (t_beta, t_distance) of ``grid`` with the best headline on ``events``, whose
    condensation outputs ``beta`` (N,) in (0, 1) and ``coords`` (N, dim) are packed by
    ``cu_seqlens``; returns it and its value (ties keep the earlier grid point)."""
    cu = cu_seqlens.tolist()
    best: tuple[tuple[float, float], float] = (grid[0], -np.inf)
    for thresholds in grid:
        labels = condense(beta, coords, cu_seqlens, *thresholds).numpy()
        value = _ari(task, events, [labels[cu[i]:cu[i + 1]] for i in range(len(events))])
        if value > best[1]:
            best = (thresholds, value)
    return best


def check_collapse(task_name: str, mode: str, beta: torch.Tensor, labels: torch.Tensor,
                   cu_seqlens: torch.Tensor) -> dict[str, float]:
    """Median largest beta and mean tracks found (``labels``, from the tuned thresholds)
    per validation event; raises ``HeadCollapsed`` when no event has a hit above the
    lowest ``WIDE_GRID`` beta threshold."""
    cu = cu_seqlens.tolist()
    max_beta = [float(beta[cu[i]:cu[i + 1]].max()) for i in range(len(cu) - 1)
                if cu[i + 1] > cu[i]]
    tracks = [len(np.unique(part[part >= 0].numpy()))
              for part in (labels[cu[i]:cu[i + 1]] for i in range(len(cu) - 1))]
    floor = min(t for t, _ in WIDE_GRID)
    if not max_beta or max(max_beta) < floor:
        raise HeadCollapsed(f"task {task_name} ({mode})", "the condensation head collapsed: "
                            f"largest beta {max(max_beta, default=0.0):.2g} < {floor} on every "
                            "validation event, so no track is found",
                            "train longer or with a lower lr, or check the features")
    return {"max_beta_median": float(np.median(max_beta)),
            "tracks_per_event": float(np.mean(tracks))}


def check_class_collapse(task_name: str, mode: str, prob: np.ndarray) -> dict[str, float]:
    """Spread (max - min) of each class probability over the validation events (prob
    (E, C)); raises ``HeadCollapsed`` when every event gets the same output."""
    spread = float(np.max(np.ptp(prob, axis=0))) if len(prob) else 0.0
    if spread < 1e-4:
        raise HeadCollapsed(f"task {task_name} ({mode})", "the classifier collapsed: every "
                            f"validation event gets the same output (spread {spread:.2g})",
                            "train longer or with a lower lr, or check the features")
    return {"probability_spread": spread}
