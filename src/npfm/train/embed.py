"""Frozen per-hit embeddings from a pretrained run, written as Parquet.

``embed(run_dir, corpus, out)`` loads the run's latest checkpoint, streams the corpus
(optionally one split) and writes ``out/part-NNNNN.parquet``, one row per event:

    run, event      int64
    n_hits          int32   hits in the event
    n_windows       int32   eta-phi windows of at most ``max_hits`` hits the event was split
                    into (``npfm.events.windows``); each window is its own sequence
    hit_index       list<int32>  0..n_hits-1: every hit, embedded exactly once (checked)
    hit_window      list<int32>  the window of each hit (0..n_windows-1)
    embedding       list<fixed_size_list<float32, d>>, row i embeds hit ``hit_index[i]``

Forward passes hold up to ``batch_events * max_hits`` hits (whole windows), so an event
of 10^6 hits is embedded piecewise in bounded memory.
Layers: "last" is the final backbone layer, "all" writes one column per layer
(``layer_00`` the token embedding, ``layer_01``... each block) instead of ``embedding``,
and "mix" is the plain mean over those layers (a learned mix belongs to downstream
adapters). Outputs are the backbone's residual stream, before the pretraining head's
final norm. ``out/embeddings.json`` (written last) records the layers, width, model
config, checkpoint and its weights' sha256, the corpus manifest's sha256, the split and
counts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from npfm.events import vocabulary
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.loader import EventLoader, PackedBatch
from npfm.events.shards import atomic_write_bytes, atomic_write_json, sha256_file
from npfm.events.windows import split
from npfm.model.foundation import FoundationModel
from npfm.train import checkpoint
from npfm.train.config import PretrainConfig

LAYER_MODES = ("last", "all", "mix")
SUMMARY = "embeddings.json"


def load_model(run_dir: Path) -> tuple[FoundationModel, Path]:
    """The run's latest checkpoint as a frozen model (eval mode, no gradients)."""
    ckpt = checkpoint.latest(run_dir)
    if ckpt is None:
        raise NpfmError(str(run_dir), "no checkpoint", "pretrain the run first")
    raw = json.loads((ckpt / "config.json").read_text())
    names = {f.name for f in dataclasses.fields(PretrainConfig)}
    raw = {k: v for k, v in raw.items() if k in names}
    raw["corpora"] = tuple(raw["corpora"])
    raw["betas"] = tuple(raw["betas"])
    raw.setdefault("objects", False)  # runs from before object tokens have no object weights
    model = FoundationModel(PretrainConfig(**raw))
    checkpoint.load(ckpt, model)
    model.eval()
    model.requires_grad_(False)
    return model, ckpt


def _select(batch: PackedBatch, keep: torch.Tensor) -> PackedBatch:
    """The events of ``batch`` where ``keep`` (B,) is true, with their hits."""
    counts = batch.cu_seqlens[1:] - batch.cu_seqlens[:-1]
    hits = torch.repeat_interleave(keep, counts)
    cu = torch.cat([counts.new_zeros(1), torch.cumsum(counts[keep], 0)])
    idx = keep.nonzero().flatten().tolist()
    return PackedBatch({k: v[hits] for k, v in batch.fields.items()}, cu, batch.run[keep],
                       batch.event[keep],
                       {k: [v[i] for i in idx] for k, v in batch.event_fields.items()})


def _nested(values: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """(N, d) float32 rows grouped per event by ``offsets`` (B+1,)."""
    inner = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), inner)


def _rows(model: FoundationModel, batch: PackedBatch, mode: str,
          window_tokens: int) -> dict[str, pa.Array]:
    """Arrow columns (one entry per event) for one batch: each event split into windows of
    at most ``max_hits`` hits, forward passes of at most ``window_tokens`` hits."""
    win = split(batch, model.config.max_hits)
    ends = win.batch.cu_seqlens[1:].cpu()
    outs: list[list[torch.Tensor]] = []
    source: list[torch.Tensor] = []
    start = 0
    while start < win.n_windows:  # windows in groups within the token budget
        base = int(win.batch.cu_seqlens[start])
        stop = max(start + 1, int(torch.searchsorted(ends, base + window_tokens, right=True)))
        part = win.slice(start, stop)
        layer_outs, perm, _ = model.layers(part.batch)
        outs.append(layer_outs)
        source.append(part.source[perm])
        start = stop
    hit = torch.cat(source)
    order = torch.argsort(hit)  # by original packed index: by event, then hit
    if not torch.equal(hit[order], torch.arange(len(hit), device=hit.device)) \
            or len(hit) != int(batch.cu_seqlens[-1]):
        raise RuntimeError("windowed embedding did not cover every hit exactly once")
    layers = [torch.cat([o[i] for o in outs]) for i in range(len(outs[0]))] if outs else []
    if mode == "last":
        columns = {"embedding": layers[-1]}
    elif mode == "mix":
        columns = {"embedding": torch.stack(layers).mean(0)}
    else:
        columns = {f"layer_{i:02d}": out for i, out in enumerate(layers)}
    src_cu = batch.cu_seqlens.to(hit.device)
    counts = src_cu[1:] - src_cu[:-1]
    local = torch.arange(len(hit), device=hit.device) - torch.repeat_interleave(
        src_cu[:-1], counts)
    window_of = torch.empty_like(hit)
    window_of[win.source.to(hit.device)] = torch.repeat_interleave(
        win.index.to(hit.device), win.batch.cu_seqlens[1:] - win.batch.cu_seqlens[:-1])
    offsets = pa.array(src_cu.cpu().numpy(), pa.int32())
    arrays: dict[str, pa.Array] = {
        "run": pa.array(batch.run.cpu().numpy()),
        "event": pa.array(batch.event.cpu().numpy()),
        "n_hits": pa.array(counts.cpu().numpy().astype(np.int32)),
        "n_windows": pa.array(torch.bincount(win.owner, minlength=batch.n_events)
                              .cpu().numpy().astype(np.int32)),
        "hit_index": pa.ListArray.from_arrays(offsets, pa.array(local.cpu().numpy(),
                                                                pa.int32())),
        "hit_window": pa.ListArray.from_arrays(offsets, pa.array(window_of.cpu().numpy(),
                                                                 pa.int32())),
    }
    for name, out in columns.items():
        arrays[name] = _nested(out[order].float().cpu().numpy(), src_cu.cpu().numpy())
    return arrays


def _write(path: Path, parts: list[dict[str, pa.Array]]) -> None:
    table = pa.Table.from_pydict({k: pa.concat_arrays([p[k] for p in parts])
                                  for k in parts[0]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


@torch.no_grad()
def embed(run_dir: Path, corpus: Path, out: Path, *, split: str | None = None,
          layers: str = "last", batch_events: int = 16, events_per_file: int = 1024,
          progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Embed every event (of ``split``) of ``corpus`` with the run's latest checkpoint;
    returns the summary also written to ``out/embeddings.json``.

    ``progress(n_events)`` is called after each batch with the events embedded so far.
    """
    if layers not in LAYER_MODES:
        raise NpfmError(f"layers {layers!r}", "unknown layer mode", "use last, all or mix")
    if split is not None and split not in vocabulary.names("splits"):
        raise NpfmError(f"split {split!r}", "unknown split",
                        f"use one of {', '.join(vocabulary.names('splits'))}")
    model, ckpt = load_model(run_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    opened = Corpus.open(corpus)
    columns = ("geometry_id", "data_level") + (("split",) if split is not None else ())
    loader = EventLoader(opened, batch_events, event_columns=columns)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("part-*.parquet"), out / SUMMARY]:
        stale.unlink(missing_ok=True)
    files: list[str] = []
    parts: list[dict[str, pa.Array]] = []
    events = hits = embedded = buffered = windows = 0
    for batch in loader:
        if split is not None:
            keep = torch.tensor([s == split for s in batch.event_fields["split"]],
                                dtype=torch.bool)
            if not keep.any():
                continue
            batch = _select(batch, keep)
        rows = _rows(model, batch.to(device), layers, batch_events * model.config.max_hits)
        parts.append(rows)
        events += batch.n_events
        buffered += batch.n_events
        hits += int(batch.cu_seqlens[-1])
        embedded += len(rows["hit_index"].flatten())
        windows += int(np.asarray(rows["n_windows"]).sum())
        if buffered >= events_per_file:
            files.append(f"part-{len(files):05d}.parquet")
            _write(out / files[-1], parts)
            parts, buffered = [], 0
        if progress:
            progress(events)
    if parts:
        files.append(f"part-{len(files):05d}.parquet")
        _write(out / files[-1], parts)
    n_layers = 1 + len(list(model.backbone.get_submodule("layers").children()))
    width = int(model.norm.normalized_shape[0])
    summary = {
        "layers": layers, "n_layers": n_layers,
        "columns": ([f"layer_{i:02d}" for i in range(n_layers)] if layers == "all"
                    else ["embedding"]),
        "dimension": width, "model": json.loads((ckpt / "config.json").read_text()),
        "checkpoint": {"path": str(ckpt), "model_sha256": sha256_file(
            ckpt / "model.safetensors")},
        "corpus": {"path": str(corpus), "manifest_sha256": sha256_file(
            opened.path / "manifest.json")},
        "split": split, "events": events, "hits": hits, "embedded_hits": embedded,
        "cut_hits": hits - embedded, "windows": windows,
        "max_hits": model.config.max_hits, "files": files,
    }
    atomic_write_json(out / SUMMARY, summary)
    return summary
