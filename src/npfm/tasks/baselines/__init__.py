"""Tracking baselines: a classical Hough finder, DBSCAN on raw coordinates or embeddings
and a pure-PyTorch GNN, with a common interface (``TrackFinder``: ``fit(events)``,
``predict(event)`` -> per-hit labels, -1 unassigned) and ``evaluate_tracking``."""

from npfm.tasks.baselines.dbscan import DBSCANTrackFinder, EmbeddingDBSCAN, cluster_embeddings
from npfm.tasks.baselines.evaluate import evaluate_tracking
from npfm.tasks.baselines.events import Event, TrackFinder, events_from_corpus
from npfm.tasks.baselines.gnn import GNNTrackFinder
from npfm.tasks.baselines.hough import HoughTrackFinder

__all__ = [
    "DBSCANTrackFinder",
    "EmbeddingDBSCAN",
    "Event",
    "GNNTrackFinder",
    "HoughTrackFinder",
    "TrackFinder",
    "cluster_embeddings",
    "evaluate_tracking",
    "events_from_corpus",
]
