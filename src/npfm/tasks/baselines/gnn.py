"""GNN track finder in pure PyTorch: an interaction network classifies the edges of a
geometric hit graph (``gnn_graph``); edges above ``threshold`` that are the best of their
hit in each direction are kept, and the connected components (scipy.sparse.csgraph) of at
least ``min_hits`` hits are the tracks.

Training: binary cross-entropy on true edges (consecutive hits of one particle), positive
class weighted by the negative/positive ratio, Adam, mini-batches of whole events; the
graph cuts are fitted on the same training events. Everything is seeded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import roc_auc_score
from torch import nn

from npfm.tasks.baselines.events import TRUTH_COLUMNS, Event, require
from npfm.tasks.baselines.gnn_graph import (
    EDGE_FEATURES,
    NODE_FEATURES,
    Graph,
    GraphCuts,
    build_graph,
    fit_cuts,
)


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.LayerNorm(hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out))


class InteractionNetwork(nn.Module):
    """Edge classifier: encoders, ``iterations`` residual edge/node updates (sum
    aggregation over incoming and outgoing edges), an edge-logit head."""

    def __init__(self, hidden: int = 24, iterations: int = 3) -> None:
        super().__init__()
        self.node_encoder = _mlp(NODE_FEATURES, hidden, hidden)
        self.edge_encoder = _mlp(2 * hidden + EDGE_FEATURES, hidden, hidden)
        self.edge_updates = nn.ModuleList(_mlp(3 * hidden, hidden, hidden)
                                          for _ in range(iterations))
        self.node_updates = nn.ModuleList(_mlp(3 * hidden, hidden, hidden)
                                          for _ in range(iterations))
        self.head = _mlp(3 * hidden, hidden, 1)

    def forward(self, nodes: torch.Tensor, edges: torch.Tensor,
                edge_features: torch.Tensor) -> torch.Tensor:
        """Edge logits, shape (n_edges,)."""
        src, dst = edges
        h = self.node_encoder(nodes)
        e = self.edge_encoder(torch.cat([h[src], h[dst], edge_features], dim=1))
        for edge_mlp, node_mlp in zip(self.edge_updates, self.node_updates, strict=True):
            e = e + edge_mlp(torch.cat([h[src], h[dst], e], dim=1))
            incoming = torch.zeros_like(h).index_add_(0, dst, e)
            outgoing = torch.zeros_like(h).index_add_(0, src, e)
            h = h + node_mlp(torch.cat([h, incoming, outgoing], dim=1))
        return self.head(torch.cat([h[src], h[dst], e], dim=1)).squeeze(1)


def _batch(graphs: Sequence[Graph]) -> tuple[torch.Tensor, ...]:
    """Graphs joined into one (node indices offset); truth as float."""
    offsets = np.cumsum([0] + [len(g.nodes) for g in graphs[:-1]])
    nodes = torch.from_numpy(np.concatenate([g.nodes for g in graphs]))
    edges = torch.from_numpy(np.concatenate([g.edges + o for g, o in
                                             zip(graphs, offsets, strict=True)], axis=1))
    feats = torch.from_numpy(np.concatenate([g.edge_features for g in graphs]))
    truth = torch.from_numpy(np.concatenate([g.truth for g in graphs if g.truth is not None])
                             .astype(np.float32))
    return nodes, edges, feats, truth


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op torch threads, then restore the previous number (small
    graphs run fastest on one thread, and spinning threads stall a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def best_edges(edges: np.ndarray, scores: np.ndarray, n_hits: int) -> np.ndarray:
    """Mask of the edges that are both the best-scored outward edge of their inner hit and
    the best-scored inward edge of their outer hit (so one stray edge cannot merge two
    tracks)."""
    best_out = np.full(n_hits, -np.inf)
    best_in = np.full(n_hits, -np.inf)
    np.maximum.at(best_out, edges[0], scores)
    np.maximum.at(best_in, edges[1], scores)
    return (scores >= best_out[edges[0]]) & (scores >= best_in[edges[1]])


def components(n_hits: int, edges: np.ndarray, min_hits: int) -> np.ndarray:
    """Connected-component labels of the hits (-1 for components under ``min_hits``)."""
    graph = coo_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])), shape=(n_hits, n_hits))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    return np.where(sizes[labels] >= min_hits, labels, -1).astype(np.int64)


@dataclass
class GNNTrackFinder:
    """Interaction-network edge classifier + connected components (trained baseline).

    hidden, iterations: network size; epochs, batch_events, lr: training; seed: weights and
    batch order; threshold: edge score kept; min_hits: smallest track; keep: fraction of
    true training edges the graph cuts keep; max_skip: layers an edge may skip; threads:
    intra-op torch threads while training and predicting; best_edges_only: keep only the
    best edge per hit and direction before the connected components.
    """

    geometry: str = "sphenix"
    hidden: int = 24
    iterations: int = 3
    epochs: int = 10
    batch_events: int = 4
    lr: float = 3e-3
    seed: int = 0
    threshold: float = 0.5
    min_hits: int = 3
    keep: float = 0.995
    max_skip: int = 2
    threads: int = 1
    best_edges_only: bool = True
    name: str = field(default="gnn", init=False)
    cuts: GraphCuts = field(default_factory=GraphCuts, init=False)
    model: InteractionNetwork | None = field(default=None, init=False, repr=False)
    losses: list[float] = field(default_factory=list, init=False, repr=False)

    def fit(self, events: Sequence[Event]) -> None:
        """Fit the graph cuts and train the network on labelled events."""
        for event in events:
            require(event, TRUTH_COLUMNS, "training the GNN")
        self.cuts = fit_cuts(events, self.geometry, self.max_skip, self.keep)
        graphs = [g for g in (build_graph(e, self.geometry, self.cuts) for e in events)
                  if g.edges.shape[1]]
        if not graphs:
            raise ValueError("no training event has a candidate edge")
        with torch_threads(self.threads):
            self._train(graphs)

    def _train(self, graphs: list[Graph]) -> None:
        torch.manual_seed(self.seed)
        model = InteractionNetwork(self.hidden, self.iterations)
        n_pos = sum(int(g.truth.sum()) for g in graphs if g.truth is not None)
        n_all = sum(g.edges.shape[1] for g in graphs)
        weight = torch.tensor(max(n_all - n_pos, 1) / max(n_pos, 1))
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=weight)
        optimiser = torch.optim.Adam(model.parameters(), lr=self.lr)
        n_steps = self.epochs * -(-len(graphs) // self.batch_events)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, n_steps)
        rng = np.random.default_rng(self.seed)
        self.losses = []
        model.train()
        for _ in range(self.epochs):
            order = rng.permutation(len(graphs))
            total = 0.0
            for start in range(0, len(order), self.batch_events):
                nodes, edges, feats, truth = _batch([graphs[i] for i in
                                                     order[start:start + self.batch_events]])
                loss = loss_fn(model(nodes, edges, feats), truth)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                total += float(loss.detach()) * len(truth)
            self.losses.append(total / n_all)
        model.eval()
        self.model = model

    def edge_scores(self, event: Event) -> tuple[Graph, np.ndarray]:
        """The event's graph and the sigmoid score of each edge."""
        if self.model is None:
            raise RuntimeError("GNNTrackFinder.fit must run before predict")
        graph = build_graph(event, self.geometry, self.cuts)
        if graph.edges.shape[1] == 0:
            return graph, np.zeros(0, np.float32)
        with torch.no_grad(), torch_threads(self.threads):
            logits = self.model(torch.from_numpy(graph.nodes), torch.from_numpy(graph.edges),
                                torch.from_numpy(graph.edge_features))
        return graph, torch.sigmoid(logits).numpy()

    def predict(self, event: Event) -> np.ndarray:
        graph, scores = self.edge_scores(event)
        keep = scores > self.threshold
        if self.best_edges_only:
            keep &= best_edges(graph.edges, scores, len(graph.nodes))
        return components(len(graph.nodes), graph.edges[:, keep], self.min_hits)

    def edge_metrics(self, events: Sequence[Event]) -> dict[str, float]:
        """Edge AUC, efficiency (true edges kept / true candidate pairs, so graph losses
        count), purity (true / kept) and graph efficiency (true edges in the graph / true
        candidate pairs) on labelled events."""
        scores: list[np.ndarray] = []
        truth: list[np.ndarray] = []
        n_true = 0
        for event in events:
            graph, s = self.edge_scores(event)
            if graph.truth is None:
                raise ValueError("edge_metrics needs events with hit_particle")
            scores.append(s)
            truth.append(graph.truth)
            n_true += graph.n_true
        score, true = np.concatenate(scores), np.concatenate(truth).astype(bool)
        kept = score > self.threshold
        return {
            "auc": float(roc_auc_score(true, score)),
            "efficiency": float((kept & true).sum() / max(n_true, 1)),
            "purity": float((kept & true).sum() / max(kept.sum(), 1)),
            "graph_efficiency": float(true.sum() / max(n_true, 1)),
        }
