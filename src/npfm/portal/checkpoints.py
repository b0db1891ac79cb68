"""Checkpoint (foundation model) pages: architecture, pretraining corpora, results, card.

A checkpoint is the latest weights of a pretraining run, registered with its
``config.json``; the page reads the architecture and training settings from that config,
the corpora from its ``trained_on`` edges and the results that evaluate it, and the loss
curve (``metrics.jsonl``) and representation probe (``probe.json``) from the run
directory where it is readable.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from npfm.catalog.models import BenchmarkResult, Checkpoint, Dataset, ProvenanceEdge
from npfm.portal.app import db, state
from npfm.portal.provenance import checkpoint_label, result_label
from npfm.portal.views import result_dict, row_or_404

router = APIRouter(include_in_schema=False)
DB = Annotated[Session, Depends(db)]
#: Config keys shown as the architecture, and as the pretraining settings.
ARCHITECTURE = ("backbone", "size", "d_model", "layers", "order", "objective", "k")
TRAINING = ("steps", "batch_events", "lr", "min_lr", "warmup", "weight_decay", "seed")


def checkpoint_facts(session: Session, ckpt: Checkpoint) -> dict[str, Any]:
    """Label, architecture, training settings, corpora and results of a checkpoint."""
    config = ckpt.config if isinstance(ckpt.config, dict) else {}
    trained = set(session.scalars(select(ProvenanceEdge.target_id).where(
        ProvenanceEdge.source_kind == "checkpoint", ProvenanceEdge.source_id == ckpt.model_sha256,
        ProvenanceEdge.relation == "trained_on")))
    corpora = list(session.scalars(select(Dataset).where(Dataset.manifest_sha256.in_(trained))
                                   .order_by(Dataset.name)))
    edge_ids = {int(i) for i in session.scalars(select(ProvenanceEdge.source_id).where(
        ProvenanceEdge.source_kind == "benchmark_result",
        ProvenanceEdge.target_kind == "checkpoint",
        ProvenanceEdge.target_id == ckpt.model_sha256)) if i.isdigit()}
    results = list(session.scalars(select(BenchmarkResult).where(or_(
        BenchmarkResult.checkpoint_id == ckpt.id, BenchmarkResult.id.in_(edge_ids)))
        .order_by(BenchmarkResult.task, BenchmarkResult.id)))
    return {"label": checkpoint_label(ckpt),
            "architecture": {k: config[k] for k in ARCHITECTURE if k in config},
            "training": {k: config[k] for k in TRAINING if k in config},
            "corpora": corpora,
            "results": [{**result_dict(r), "label": result_label(r)} for r in results]}


def model_card(ckpt: Checkpoint, facts: dict[str, Any]) -> str:
    """A plain-text model card generated from the checkpoint's facts."""
    arch = ", ".join(f"{k} {v}" for k, v in facts["architecture"].items()) or "not recorded"
    corpora = ", ".join(f"{d.name} ({d.events} events)" for d in facts["corpora"])
    lines = [f"# {facts['label']}", "",
             f"Architecture: {arch}.",
             f"Pretrained for {ckpt.step} steps on: {corpora or 'no registered corpus'}.",
             f"Weights: model.safetensors, sha256 {ckpt.model_sha256}.", "",
             "## Evaluations"]
    lines += [f"- {r['label']}" for r in facts["results"]] or ["- none registered"]
    lines += ["", "## Intended use",
              "Research on detector-level foundation models; the results above are the only "
              "evidence of what it does well. Not validated for physics analyses."]
    return "\n".join(lines)


#: Most metrics.jsonl lines read for the loss curve (a run logs one per step).
MAX_LOG_LINES = 200_000


def loss_curve_svg(run_path: str, width: int = 560, height: int = 220) -> str | None:
    """The run's pretraining loss against step (``metrics.jsonl``) as an inline SVG, or
    None when the log is missing or holds no finite loss. Drawn on the server: the page
    carries no script."""
    log = FsPath(run_path) / "metrics.jsonl"
    points: list[tuple[float, float]] = []
    try:
        with open(log, encoding="utf-8") as fh:
            for line in itertools.islice(fh, MAX_LOG_LINES):
                try:
                    row = json.loads(line)
                    step, loss = float(row["step"]), float(row["loss"])
                except (ValueError, KeyError, TypeError):
                    continue
                if math.isfinite(step) and math.isfinite(loss):
                    points.append((step, loss))
    except OSError:
        return None
    if len(points) < 2:
        return None
    steps, losses = zip(*points, strict=True)
    s0, s1, l0, l1 = min(steps), max(steps), min(losses), max(losses)
    pad, span_s, span_l = 40, (s1 - s0) or 1.0, (l1 - l0) or 1.0
    coords = " ".join(f"{pad + (s - s0) / span_s * (width - 2 * pad):.1f},"
                      f"{height - pad - (v - l0) / span_l * (height - 2 * pad):.1f}"
                      for s, v in points)
    return (f'<svg id="loss-curve" class="loss" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" role="img" aria-label="pretraining loss">'
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{coords}"/>'
            f'<text x="{pad}" y="{height - 12}">step {s0:g}</text>'
            f'<text x="{width - pad}" y="{height - 12}" text-anchor="end">step {s1:g}</text>'
            f'<text x="4" y="{pad - 8}">loss {l1:.4g}</text>'
            f'<text x="4" y="{height - pad + 16}">{l0:.4g}</text></svg>')


#: Targets of the linear probes shown on the page (all are in the run's probe.json).
PROBE_TARGETS = {"eta": "η", "cos_phi": "cos φ", "r_cm": "r", "log10_pt": "log pT"}


def probe_figures(run_path: str, model_sha256: str) -> dict[str, Any] | None:
    """The run's latest probe (``<run>/probe.json``, written by ``npfm probe``) when it
    probed these weights: per representation the same-track k-NN purity and linear-probe
    R² of ``PROBE_TARGETS``; None when there is none or it probed other weights."""
    try:
        probe = json.loads((FsPath(run_path) / "probe.json").read_text(encoding="utf-8"))
        if probe.get("checkpoint_sha256") != model_sha256:
            return None
        rows = [{"name": rep, "purity": purity,
                 "r2": [probe["linear_probe"].get(rep, {}).get(t) for t in PROBE_TARGETS]}
                for rep, purity in probe["knn_purity"].items()]
        return {"k": probe["k"], "corpus": probe["corpus"], "split": probe["split"],
                "n_events": probe["n_events"], "n_hits": probe["n_hits"], "rows": rows,
                "targets": list(PROBE_TARGETS.values())}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


@router.get("/checkpoints/{checkpoint_id}", response_class=HTMLResponse)
def checkpoint_page(checkpoint_id: Annotated[int, Path(ge=1, le=2**62)], request: Request,
                    session: DB) -> HTMLResponse:
    """One pretrained model: architecture, corpora, training settings, results, card."""
    ckpt = row_or_404(session, Checkpoint, checkpoint_id, "checkpoint")
    facts = checkpoint_facts(session, ckpt)
    return state(request).templates.TemplateResponse(request, "checkpoint.html", {
        "c": ckpt, "facts": facts, "card": model_card(ckpt, facts),
        "loss_svg": Markup(svg) if (svg := loss_curve_svg(ckpt.run_path)) else None,
        "probe": probe_figures(ckpt.run_path, ckpt.model_sha256)})
