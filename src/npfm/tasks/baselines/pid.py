"""Classical per-track PID: fitted momentum and truncated-mean TPC dE/dx, classified by
gradient-boosted trees, as a TPC experiment identifies hadrons from the dE/dx band.

Per track (the hits of one truth particle, as the ``pid_track`` task groups them):

- transverse momentum and dip angle from a helix fit to the hits (``npfm.tasks.trackfit``),
  p = pT sqrt(1 + (dz/ds)^2);
- the truncated-mean (70%) dE/dx of its TPC hits (keV/cm), each deposit divided by its
  path through the pad row computed from the *fitted* momentum
  (``npfm.detectors.dedx.path_factor``);
- the number of hits and |dz/ds|.

A ``HistGradientBoostingClassifier`` with balanced class weights (the task ranks by macro
recall) is fitted on the training tracks; features that cannot be computed (fewer than 3
hits for the fit, fewer than ``MIN_TPC_HITS`` TPC hits for dE/dx) are NaN, which the trees
route natively, so every track the adapters are scored on gets a prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from npfm.detectors import load_geometry
from npfm.detectors.dedx import path_factor, row_lengths, truncated_mean
from npfm.events import vocabulary
from npfm.tasks.data import TaskEvent
from npfm.tasks.specs import Task, track_objects
from npfm.tasks.trackfit import fitted_momentum

#: TPC hits needed for a truncated-mean dE/dx (sPHENIX's TPC has 48 pad rows).
MIN_TPC_HITS = 5
FEATURES = ("log10_p_fit", "dedx_kev_per_cm", "abs_tan_dip", "n_hits", "n_tpc_hits")


def track_features(event: TaskEvent) -> tuple[np.ndarray, np.ndarray]:
    """(T, len(FEATURES)) features and (T,) truth classes of the event's tracks, in the
    order of increasing track id (``track_objects``), as ``per_track`` orders them."""
    geometry = load_geometry(str(event.info["geometry_id"]))
    field_tesla = float(event.info.get("magnetic_field") or geometry.field_tesla)
    tracks = track_objects(event)
    tpc_code = vocabulary.code("subsystems", "TPC")
    x, y, z = (event.hit(f"hit_{c}").astype(np.float64) for c in "xyz")
    edep = event.hit("hit_edep").astype(np.float64)
    subsystem, layer = event.hit("hit_subsystem"), event.hit("hit_layer")
    rows = row_lengths(geometry) if "TPC" in geometry.subsystems else np.zeros(0)
    pid = event.hit("hit_pid_class")
    ids = np.unique(tracks[tracks >= 0])
    out = np.full((len(ids), len(FEATURES)), np.nan)
    truth = np.zeros(len(ids), np.int64)
    for j, track in enumerate(ids):
        mine = tracks == track
        truth[j] = int(pid[mine][0])
        pt, p, tan_dip = fitted_momentum(x[mine], y[mine], z[mine], field_tesla)
        tpc = mine & (subsystem == tpc_code) & np.isfinite(edep) & (edep > 0)
        dedx = np.nan
        if tpc.sum() >= MIN_TPC_HITS and np.isfinite(p) and len(rows):
            path = rows[layer[tpc]] * path_factor(np.hypot(x[tpc], y[tpc]), pt, p,
                                                  field_tesla)
            dedx = truncated_mean(edep[tpc] * 1e6 / path)
        out[j] = (np.log10(p) if p > 0 else np.nan, dedx, tan_dip, mine.sum(), tpc.sum())
    return out, truth


class DedxPID:
    """Gradient-boosted trees on ``FEATURES``; ``predict`` gives per-hit probabilities
    (each hit of a track gets its track's class probabilities) for ``fit.score``."""

    def __init__(self, task: Task, seed: int = 0) -> None:
        self.task = task
        self.model = HistGradientBoostingClassifier(
            class_weight="balanced", learning_rate=0.05, max_iter=200, max_leaf_nodes=15,
            l2_regularization=1.0, early_stopping=False, random_state=seed)

    def fit(self, events: Sequence[TaskEvent]) -> DedxPID:
        parts = [track_features(e) for e in events]
        x = np.concatenate([f for f, _ in parts])
        y = np.concatenate([t for _, t in parts])
        if len(np.unique(y)) < 2:
            raise ValueError(f"the training events hold tracks of {len(np.unique(y))} class")
        self.model.fit(x, y)
        return self

    def predict(self, event: TaskEvent) -> np.ndarray:
        """(N, n_classes) probabilities per hit; uniform for hits of no track."""
        features, _ = track_features(event)
        prob = np.full((event.n_hits, self.task.n_out), 1.0 / self.task.n_out)
        if len(features):
            track_prob = np.zeros((len(features), self.task.n_out))
            track_prob[:, self.model.classes_] = self.model.predict_proba(features)
            tracks = track_objects(event)
            ids = np.unique(tracks[tracks >= 0])
            member = tracks >= 0
            prob[member] = track_prob[np.searchsorted(ids, tracks[member])]
        return prob
