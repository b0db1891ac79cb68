"""Classical electron/pion separation (task ``calo_eid``), scored like the adapters.

- ``EOverPCut``: the discriminant is E/p, the matched EMCal cluster energy over the
  fitted track momentum (``npfm.tasks.calo.shower_features``); a cut on it at the task's
  working point (90% electron efficiency) is what ``rejection_at_90`` scores.
- ``ShowerShapeBDT``: gradient-boosted trees (``HistGradientBoostingClassifier``) on the
  shower shapes ``SHOWER_FEATURES`` (E/p, hadronic over EM energy, cluster width, core
  fraction, cells, log p), fitted on the training events, balanced classes.

Both give per-event class probabilities (E, 2) for ``npfm.tasks.fit.score``; events
without a matched track (IGNORE) get (0.5, 0.5) and are not scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from npfm.events.loader import IGNORE_INDEX
from npfm.tasks.calo import SHOWER_FEATURES, shower_features
from npfm.tasks.data import TaskEvent


def _table(events: Sequence[TaskEvent]) -> tuple[np.ndarray, np.ndarray]:
    parts = [shower_features(e) for e in events]
    return (np.stack([f for f, _ in parts]) if parts else np.zeros((0, len(SHOWER_FEATURES))),
            np.array([label for _, label in parts], dtype=np.int64))


def _as_prob(score: np.ndarray) -> np.ndarray:
    """(E, 2) probabilities from a signal score in [0, 1]; NaN -> 0.5."""
    s = np.where(np.isfinite(score), score, 0.5)
    return np.stack([1 - s, s], 1)


class EOverPCut:
    """E/p as the discriminant; monotone in E/p, mapped to [0, 1) as (E/p) / (1 + E/p)."""

    name = "E/p cut"

    def fit(self, events: Sequence[TaskEvent]) -> EOverPCut:
        return self  # nothing to fit: the working point is set by the metric

    def predict(self, events: Sequence[TaskEvent]) -> np.ndarray:
        e_over_p = np.clip(_table(events)[0][:, 0], 0, None)
        return _as_prob(e_over_p / (1 + e_over_p))


class ShowerShapeBDT:
    """Gradient-boosted trees on the shower shapes (NaN features routed natively)."""

    name = "shower-shape BDT"

    def __init__(self, seed: int = 0) -> None:
        self.model = HistGradientBoostingClassifier(
            class_weight="balanced", learning_rate=0.05, max_iter=200, max_leaf_nodes=15,
            l2_regularization=1.0, early_stopping=False, random_state=seed)

    def fit(self, events: Sequence[TaskEvent]) -> ShowerShapeBDT:
        x, y = _table(events)
        keep = y != IGNORE_INDEX
        if len(np.unique(y[keep])) < 2:
            raise ValueError(f"the training events hold {keep.sum()} matched tracks of "
                             f"{len(np.unique(y[keep]))} class; need electrons and pions")
        self.model.fit(x[keep], y[keep])
        return self

    def predict(self, events: Sequence[TaskEvent]) -> np.ndarray:
        x, _ = _table(events)
        return np.asarray(self.model.predict_proba(x)) if len(x) else np.zeros((0, 2))
