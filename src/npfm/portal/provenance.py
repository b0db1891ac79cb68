"""The provenance graph around a dataset, drawn server-side as SVG with a layered layout.

Edges are ``ProvenanceEdge`` rows (``source`` --relation--> ``target``, the source being
derived from, trained on or generated from the target), plus ``has_member`` edges from a
dataset to its shards. The layer of a node is the length of its longest chain of origins,
so raw inputs sit on the left and published results on the right.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from html import escape

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from npfm.catalog.models import BenchmarkResult, Checkpoint, Dataset, File, ProvenanceEdge

Node = tuple[str, str]  # (kind, id)
#: Most nodes drawn; the walk stops there and the page says so.
MAX_NODES = 40
#: Most shards of a dataset taken as starting points of the walk.
MAX_SHARDS = 20
_W, _H, _DX, _DY = 170.0, 34.0, 260.0, 52.0  # node box and spacing, SVG pixels


@dataclass
class Graph:
    """Nodes with labels and links, edges with relations, and whether the walk was cut."""

    labels: dict[Node, str] = field(default_factory=dict)
    links: dict[Node, str] = field(default_factory=dict)
    edges: set[tuple[Node, Node, str]] = field(default_factory=set)
    truncated: bool = False


def _neighbours(session: Session, nodes: set[Node]) -> list[ProvenanceEdge]:
    conds = []
    for kind, ident in nodes:
        conds.append((ProvenanceEdge.source_kind == kind) & (ProvenanceEdge.source_id == ident))
        conds.append((ProvenanceEdge.target_kind == kind) & (ProvenanceEdge.target_id == ident))
    return list(session.scalars(select(ProvenanceEdge).where(or_(*conds)))) if conds else []


def dataset_graph(session: Session, dataset: Dataset, depth: int = 4) -> Graph:
    """Walk the edges around ``dataset`` (its manifest and shard sha256s) up to ``depth`` hops."""
    graph = Graph()
    me: Node = ("dataset", dataset.manifest_sha256)
    shards = list(session.scalars(select(File).where(File.dataset_id == dataset.id)
                                  .order_by(File.id).limit(MAX_SHARDS)))
    seen: set[Node] = {me, ("sha256", dataset.manifest_sha256)}
    for shard in shards:
        node = ("sha256", shard.sha256)
        graph.edges.add((me, node, "has_member"))
        seen.add(node)
    frontier = set(seen)
    for _ in range(depth):
        new: set[Node] = set()
        for edge in _neighbours(session, frontier):
            source, target = (edge.source_kind, edge.source_id), (edge.target_kind, edge.target_id)
            graph.edges.add((source, target, edge.relation))
            new.update(n for n in (source, target) if n not in seen)
        if len(seen) + len(new) > MAX_NODES:
            graph.truncated = True
            new = set(sorted(new)[:MAX_NODES - len(seen)])
        seen |= new
        frontier = new
        if not frontier:
            break
    graph.edges = {e for e in graph.edges if e[0] in seen and e[1] in seen}
    # The manifest sha256 and the dataset are one node.
    graph.edges = {(_alias(s, dataset), _alias(t, dataset), r) for s, t, r in graph.edges}
    for node in {n for e in graph.edges for n in e[:2]} | {me}:
        graph.labels[node], link = _label(session, node)
        if link:
            graph.links[node] = link
    return graph


def _alias(node: Node, dataset: Dataset) -> Node:
    return ("dataset", node[1]) if node == ("sha256", dataset.manifest_sha256) else node


def _label(session: Session, node: Node) -> tuple[str, str | None]:
    kind, ident = node
    if kind in ("dataset", "sha256"):
        found = session.scalar(select(Dataset).where(Dataset.manifest_sha256 == ident))
        if found is not None:
            return f"dataset {found.name}", f"/datasets/{found.id}"
    if kind == "sha256":
        shard = session.scalar(select(File).where(File.sha256 == ident).limit(1))
        if shard is not None:
            return f"shard {shard.path.rsplit('/', 1)[-1]}", f"/files/{shard.id}"
        return f"input {ident[:12]}", None
    if kind == "checkpoint":
        ckpt = session.scalar(select(Checkpoint).where(Checkpoint.model_sha256 == ident))
        if ckpt is not None:
            return f"checkpoint step {ckpt.step}", None
    if kind == "benchmark_result" and ident.isdigit():
        result = session.get(BenchmarkResult, int(ident))
        if result is not None:
            return f"{result.metric} = {result.value:.4g}", f"/results/{result.id}"
    return f"{kind} {ident[:12]}", None


def layers(graph: Graph) -> dict[Node, int]:
    """Longest chain of origins of each node (0: nothing it derives from)."""
    origins: dict[Node, set[Node]] = defaultdict(set)
    for source, target, _ in graph.edges:
        origins[source].add(target)
    layer = dict.fromkeys(graph.labels, 0)
    for _ in range(len(layer)):  # relaxation; a cycle stops after len(nodes) rounds
        changed = False
        for node, targets in origins.items():
            want = 1 + max(layer[t] for t in targets)
            if want > layer[node] and want < len(layer):
                layer[node], changed = want, True
        if not changed:
            break
    return layer


def render_svg(graph: Graph) -> str:
    """The graph as an inline SVG element: origins left, derived products right."""
    layer = layers(graph)
    columns: dict[int, list[Node]] = defaultdict(list)
    for node in sorted(layer, key=lambda n: (layer[n], graph.labels[n])):
        columns[layer[node]].append(node)
    pos = {node: (20 + col * _DX, 20 + row * _DY)
           for col, nodes in columns.items() for row, node in enumerate(nodes)}
    width = 40 + _W + _DX * max(columns, default=0)
    height = 40 + _DY * max((len(v) for v in columns.values()), default=1)
    out = [f'<svg class="provenance" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="provenance graph"><defs><marker id="arrow" viewBox="0 0 10 10" '
           'refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
           '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
    for source, target, relation in sorted(graph.edges):
        (sx, sy), (tx, ty) = pos[source], pos[target]  # top-left corners, px
        x1, y1, x2, y2 = tx + _W, ty + _H / 2, sx, sy + _H / 2  # origin -> derived
        if layer[source] <= layer[target]:  # same column: draw below the boxes
            x1, x2 = tx + _W / 2, sx + _W / 2
        out.append(f'<g class="edge"><line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
                   f'marker-end="url(#arrow)"/><text x="{x1 + 0.3 * (x2 - x1):.1f}" '
                   f'y="{y1 + 0.3 * (y2 - y1) - 4:.1f}">{escape(relation)}</text></g>')
    for node, (x, y) in pos.items():
        box = (f'<g class="node {escape(node[0])}"><title>{escape(node[0])} '
               f'{escape(node[1])}</title><rect x="{x}" y="{y}" width="{_W}" height="{_H}" '
               f'rx="6"/><text x="{x + 8}" y="{y + 21}">{escape(graph.labels[node][:26])}'
               '</text></g>')
        link = graph.links.get(node)
        out.append(f'<a href="{escape(link)}">{box}</a>' if link else box)
    out.append("</svg>")
    return "".join(out)
