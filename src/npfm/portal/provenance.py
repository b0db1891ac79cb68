"""The provenance graph around a dataset, drawn server-side as SVG with a layered layout.

Edges are ``ProvenanceEdge`` rows (``source`` --relation--> ``target``, the source being
derived from, trained on or generated from the target), plus ``has_member`` edges from a
dataset to its shards. The layer of a node is the length of its longest chain of origins,
so raw inputs sit on the left and published results on the right. Labels are human
(``run mixed · step 100``, ``noise accuracy 0.931 · frozen · seed 1``); a node with
more than ``GROUP`` results shows ``GROUP - 1`` of them and one group node for the rest;
a column taller than ``COLUMN`` nodes wraps; relations are told by line style (legend),
so no text sits on an edge.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from pathlib import PurePath

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from npfm.catalog.models import BenchmarkResult, Checkpoint, Dataset, File, ProvenanceEdge

Node = tuple[str, str]  # (kind, id)
#: Most nodes drawn; the walk stops there and the page says so.
MAX_NODES = 40
#: Most shards of a dataset taken as starting points of the walk.
MAX_SHARDS = 20
#: Most results drawn per node before the rest collapse into one group node.
GROUP = 6
#: Most nodes in one column of the drawing before it wraps.
COLUMN = 10
_W, _H, _DX, _DY = 230.0, 34.0, 300.0, 48.0  # node box and spacing, SVG pixels
_TOP = 40.0  # room for the legend, SVG pixels


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
            return checkpoint_label(ckpt), f"/checkpoints/{ckpt.id}"
    if kind == "benchmark_result" and ident.isdigit():
        result = session.get(BenchmarkResult, int(ident))
        if result is not None:
            return result_label(result), f"/results/{result.id}"
    return f"{kind} {ident[:12]}", None


def checkpoint_label(ckpt: Checkpoint) -> str:
    """``run NAME · step N`` (the run directory's name)."""
    return f"run {ckpt.run_path.rstrip('/').rsplit('/', 1)[-1]} · step {ckpt.step}"


def result_settings(result: BenchmarkResult, with_run: bool = False) -> list[str]:
    """``mode``, (the run's directory name), ``n=N`` and ``seed S`` of a result, from its
    config where it gives them."""
    config = (result.details or {}).get("config", {}) if isinstance(result.details, dict) else {}
    parts: list[str] = []
    if isinstance(config, dict):
        parts += [str(config["mode"])] if config.get("mode") else []
        parts += [PurePath(str(config["run"])).name] if with_run and config.get("run") else []
        parts += [f"n={config['n_train']}"] if config.get("n_train") else []
    seeds = ",".join(map(str, result.seeds or []))
    return parts + ([f"seed {seeds}"] if seeds else [])


def result_label(result: BenchmarkResult) -> str:
    """``task metric value · mode · n=N · seed S`` from the result and its config."""
    return " · ".join([f"{result.task} {result.metric} {result.value:.3g}",
                       *result_settings(result)])


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


def _grouped(graph: Graph) -> Graph:
    """A copy of ``graph`` with each node's results beyond ``GROUP - 1`` in a group node."""
    out = Graph(dict(graph.labels), dict(graph.links), set(graph.edges), graph.truncated)
    results: dict[Node, list[Node]] = defaultdict(list)
    for source, target, _ in graph.edges:
        if source[0] == "benchmark_result":
            results[target].append(source)
    for target, found in results.items():
        if len(found) <= GROUP:
            continue
        hidden = sorted(found, key=lambda n: graph.labels[n])[GROUP - 1:]
        group: Node = ("group", target[1])
        out.labels[group] = f"+ {len(hidden)} more results"
        out.links[group] = "#results"
        for node in hidden:
            out.labels.pop(node, None)
            out.links.pop(node, None)
        out.edges = {e for e in out.edges if e[0] not in hidden and e[1] not in hidden}
        out.edges.add((group, target, "evaluates"))
    return out


def _positions(graph: Graph, layer: dict[Node, int]) -> dict[Node, tuple[float, float]]:
    """Top-left corner of each node: a column per layer, wrapped every ``COLUMN`` nodes."""
    columns: dict[int, list[Node]] = defaultdict(list)
    for node in sorted(layer, key=lambda n: (layer[n], graph.labels[n])):
        columns[layer[node]].append(node)
    pos, x = {}, 20.0
    for col in sorted(columns):
        nodes = columns[col]
        for start in range(0, len(nodes), COLUMN):
            for row, node in enumerate(nodes[start:start + COLUMN]):
                pos[node] = (x, _TOP + row * _DY)
            x += _DX
    return pos


def render_svg(graph: Graph) -> str:
    """The graph as an inline SVG element: origins left, derived products right."""
    graph = _grouped(graph)
    layer = layers(graph)
    pos = _positions(graph, layer)
    width = max((x for x, _ in pos.values()), default=20.0) + _W + 20
    height = max((y for _, y in pos.values()), default=_TOP) + _H + 20
    relations = sorted({r for _, _, r in graph.edges})
    out = [f'<svg class="provenance" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="provenance graph"><defs><marker id="arrow" viewBox="0 0 10 10" '
           'refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
           '<path d="M0,0 L10,5 L0,10 z"/></marker></defs><g class="legend">']
    for i, relation in enumerate(relations):
        lx = 20 + i * 150
        out.append(f'<g class="rel-{escape(relation)}"><line x1="{lx}" y1="14" x2="{lx + 30}" '
                   f'y2="14"/><text x="{lx + 36}" y="18">{escape(relation)}</text></g>')
    out.append("</g>")
    for source, target, relation in sorted(graph.edges):
        (sx, sy), (tx, ty) = pos[source], pos[target]  # top-left corners, px
        x1, y1, x2, y2 = tx + _W, ty + _H / 2, sx, sy + _H / 2  # origin -> derived
        if sx <= tx:  # same or earlier column: draw from the bottom edges
            x1, y1, x2, y2 = tx + _W / 2, ty + _H, sx + _W / 2, sy + _H
        out.append(f'<g class="edge rel-{escape(relation)}"><title>{escape(relation)}</title>'
                   f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
                   'marker-end="url(#arrow)"/></g>')
    for node, (x, y) in pos.items():
        label = graph.labels[node]
        box = (f'<g class="node {escape(node[0])}"><title>{escape(label)} ({escape(node[0])} '
               f'{escape(node[1])})</title><rect x="{x}" y="{y}" width="{_W}" height="{_H}" '
               f'rx="6"/><text x="{x + 8}" y="{y + 21}">{escape(label[:36])}</text></g>')
        link = graph.links.get(node)
        out.append(f'<a href="{escape(link)}">{box}</a>' if link else box)
    out.append("</svg>")
    return "".join(out)
