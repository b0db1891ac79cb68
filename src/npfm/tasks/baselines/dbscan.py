"""DBSCAN track finding (scikit-learn) on raw hit coordinates or on learned embeddings.

``DBSCANTrackFinder`` clusters hits in (cos phi, sin phi, w_eta * eta) seen from the
vertex: tracks from the beam line are thin, connected curves there, and DBSCAN chains hits
that lie within ``eps`` of each other. ``EmbeddingDBSCAN`` clusters any per-hit embedding
(e.g. frozen foundation-model features). ``fit`` picks eps (and the eta weight) on
labelled training events by the mean per-event ARI; points DBSCAN calls noise get -1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from sklearn.cluster import DBSCAN

from npfm.tasks.baselines.events import TRUTH_COLUMNS, Event, hit_frame, require
from npfm.tasks.metrics import ari_per_event

Embedder = Callable[[Event], np.ndarray]


def cluster_embeddings(embeddings: np.ndarray, eps: float, min_samples: int = 3) -> np.ndarray:
    """DBSCAN labels (0, 1, ...; -1 noise) of per-hit embeddings, shape (hits, dims)."""
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (hits, dims), got shape {x.shape}")
    if len(x) == 0:
        return np.zeros(0, np.int64)
    return DBSCAN(eps=eps, min_samples=min_samples).fit_predict(x).astype(np.int64)


def mean_ari(events: Sequence[Event], labels: Sequence[np.ndarray]) -> float:
    """Mean per-event ARI of ``labels`` against the events' truth (noise: own cluster)."""
    truth = np.concatenate([np.asarray(e["hit_particle"], np.int64) for e in events])
    pred = np.concatenate(labels)
    index = np.concatenate([np.full(len(p), i) for i, p in enumerate(labels)])
    return ari_per_event(truth, pred, index)["mean"]


def _select_eps(embed: Embedder, events: Sequence[Event], grid: Sequence[float],
                min_samples: int) -> tuple[float, float]:
    """(eps of the best mean ARI on ``events``, that ARI)."""
    for event in events:
        require(event, TRUTH_COLUMNS, "fitting DBSCAN")
    features = [embed(e) for e in events]
    scores = [mean_ari(events, [cluster_embeddings(f, eps, min_samples) for f in features])
              for eps in grid]
    best = int(np.nanargmax(scores))
    return float(grid[best]), float(scores[best])


@dataclass
class EmbeddingDBSCAN:
    """DBSCAN on per-hit embeddings from ``embed(event) -> (hits, dims)``.

    eps: neighbourhood radius in embedding units (chosen by ``fit`` from ``eps_grid`` when
    the grid is given); min_samples: DBSCAN core-point size.
    """

    embed: Embedder
    eps: float = 0.1
    min_samples: int = 3
    eps_grid: Sequence[float] = ()
    name: str = "dbscan-embedding"
    fit_ari: float = field(default=float("nan"), init=False)

    def fit(self, events: Sequence[Event]) -> None:
        """Choose eps on labelled events (no-op without ``eps_grid``)."""
        if self.eps_grid:
            self.eps, self.fit_ari = _select_eps(self.embed, events, self.eps_grid,
                                                 self.min_samples)

    def predict(self, event: Event) -> np.ndarray:
        return cluster_embeddings(self.embed(event), self.eps, self.min_samples)


def raw_features(event: Event, eta_weight: float = 1.0) -> np.ndarray:
    """(cos phi, sin phi, eta_weight * eta) of each hit seen from the vertex."""
    frame = hit_frame(event)
    return np.stack([np.cos(frame.phi), np.sin(frame.phi), eta_weight * frame.eta], axis=1)


@dataclass
class DBSCANTrackFinder:
    """DBSCAN on raw coordinates (classical clustering baseline).

    eps: radius in (cos phi, sin phi, eta_weight * eta) units; ``fit`` searches
    ``eps_grid`` x ``eta_weights`` on labelled events; min_samples: DBSCAN core size.
    """

    eps: float = 0.02
    eta_weight: float = 1.0
    min_samples: int = 3
    eps_grid: Sequence[float] = (0.02, 0.04, 0.06, 0.09, 0.13, 0.2, 0.3, 0.45)
    eta_weights: Sequence[float] = (1.0, 2.0, 4.0, 8.0)
    name: str = field(default="dbscan", init=False)
    fit_ari: float = field(default=float("nan"), init=False)

    def fit(self, events: Sequence[Event]) -> None:
        """Choose eps and the eta weight by the mean ARI on labelled events."""
        best = (-np.inf, self.eps, self.eta_weight)
        for weight in self.eta_weights:
            eps, score = _select_eps(partial(raw_features, eta_weight=weight), events,
                                     self.eps_grid, self.min_samples)
            best = max(best, (score, eps, weight))
        self.fit_ari, self.eps, self.eta_weight = best

    def predict(self, event: Event) -> np.ndarray:
        return cluster_embeddings(raw_features(event, self.eta_weight), self.eps,
                                  self.min_samples)
