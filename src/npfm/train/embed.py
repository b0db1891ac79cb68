"""Frozen per-hit (and per-cell) embeddings from a pretrained run, written as Parquet.

``embed(run_dir, corpus, out)`` loads the run's latest checkpoint, streams the corpus
(optionally one split) and writes ``out/part-NNNNN.parquet``, one row per event:

    run, event      int64
    n_hits          int32   hits in the event
    n_windows       int32   eta-phi windows of at most ``max_hits`` hits the event was split
                    into (``npfm.events.windows``); each window is its own sequence
    hit_index       list<int32>  0..n_hits-1: every hit, embedded exactly once (checked)
    hit_window      list<int32>  the window of each hit (0..n_windows-1)
    embedding       list<fixed_size_list<float32, d>>, row i embeds hit ``hit_index[i]``

A run pretrained with ``cells: true`` also gets the same events' calorimeter cells, with
their waveforms (``EventLoader`` groups cell, waveform and sample, batched as the hits),
and the columns

    n_cells         int32   cells in the event
    cell_index      list<int32>  0..n_cells-1: every cell, embedded exactly once (checked)
    cell_window     list<int32>  the window of each cell (0..n_windows-1)
    cell_embedding  list<fixed_size_list<float32, d>>, row i embeds cell ``cell_index[i]``

(empty lists for an event without cells). The windows are then those of training
(``npfm.events.cell_windows.split_cells``: at most ``max_hits`` hits and ``max_hits``
cells each, so ``n_windows`` counts windows of both), and each window is one sequence of
its hits then its cells, as in training: the hit columns are computed with the window's
cells in the sequence. With the attention backbone hits and cells share patches, so a
hit's embedding depends on them; the Mamba-2 scan is causal, so there a hit's embedding
depends on the cells only through the windowing. A run without cells writes exactly the
hit columns (byte-identical to before cells were embedded). A cells run on a corpus
without cells is refused (``NpfmError``).

Forward passes hold up to ``batch_events * max_hits`` hits and as many cells (whole
windows), so an event of 10^6 hits is embedded piecewise in bounded memory.
Layers: "last" is the final backbone layer, "all" writes one column per layer
(``layer_00`` the token embedding, ``layer_01``... each block; ``cell_layer_00``... for
cells) instead of ``embedding`` (``cell_embedding``), and "mix" is the plain mean over
those layers (a learned mix belongs to downstream adapters). Outputs are the backbone's
residual stream, before the pretraining head's final norm. ``out/embeddings.json``
(written last) records the layers, width, model config, checkpoint and its weights'
sha256, the corpus manifest's sha256, the split, counts (events, hits, embedded_hits,
windows; ``n_cells`` and ``embedded_cells``, null without cells), ``cells`` (true or
false) and the embedding column names (``columns``, ``cell_columns``).
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
from npfm.events.windows import slice_windows, split
from npfm.model.foundation import FoundationModel
from npfm.train import checkpoint
from npfm.train.config import PretrainConfig
from npfm.train.loop import calo_loaders, window_cells

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


def _names(mode: str, n_layers: int, prefix: str = "") -> list[str]:
    """The embedding columns of one token kind (``prefix`` "" for hits, "cell_")."""
    if mode == "all":
        return [f"{prefix}layer_{i:02d}" for i in range(n_layers)]
    return [f"{prefix}embedding"]


def _stop(cu: torch.Tensor, start: int, budget: int) -> int:
    """The end of the run of windows from ``start`` whose tokens (offsets ``cu``, on the
    CPU) fit in ``budget``."""
    return int(torch.searchsorted(cu[1:], int(cu[start]) + budget, right=True))


def _columns(kind: str, outs: list[list[torch.Tensor]], source: list[torch.Tensor],
             cu: torch.Tensor, win_source: torch.Tensor, win_index: torch.Tensor,
             win_cu: torch.Tensor, mode: str) -> dict[str, pa.Array]:
    """Index, window and embedding columns of one token kind (``kind`` "hit" or "cell"):
    ``outs`` per forward pass, the layers' rows of that kind, which embed the elements
    ``source`` (packed indices of the original batch, offsets ``cu``); ``win_source``,
    ``win_index`` and ``win_cu`` lay the windowed elements out (``Windows``)."""
    index = torch.cat(source)
    order = torch.argsort(index)  # by original packed index: by event, then element
    if not torch.equal(index[order], torch.arange(int(cu[-1]), device=index.device)):
        raise RuntimeError(f"windowed embedding did not cover every {kind} exactly once")
    layers = [torch.cat([o[i] for o in outs]) for i in range(len(outs[0]))]
    if mode == "last":
        values = [layers[-1]]
    elif mode == "mix":
        values = [torch.stack(layers).mean(0)]
    else:
        values = layers
    src_cu = cu.to(index.device)
    counts = src_cu[1:] - src_cu[:-1]
    local = torch.arange(len(index), device=index.device) - torch.repeat_interleave(
        src_cu[:-1], counts)
    window_of = torch.empty_like(index)
    window_of[win_source.to(index.device)] = torch.repeat_interleave(
        win_index.to(index.device), (win_cu[1:] - win_cu[:-1]).to(index.device))
    offsets = pa.array(src_cu.cpu().numpy(), pa.int32())
    arrays = {
        f"{kind}_index": pa.ListArray.from_arrays(offsets, pa.array(local.cpu().numpy(),
                                                                    pa.int32())),
        f"{kind}_window": pa.ListArray.from_arrays(offsets, pa.array(
            window_of.cpu().numpy(), pa.int32())),
    }
    names = _names(mode, len(layers), "" if kind == "hit" else f"{kind}_")
    for name, out in zip(names, values, strict=True):
        arrays[name] = _nested(out[order.to(out.device)].float().cpu().numpy(),
                               src_cu.cpu().numpy())
    return arrays


Calo = tuple[PackedBatch, PackedBatch, PackedBatch]


def _rows(model: FoundationModel, batch: PackedBatch, mode: str, window_tokens: int,
          calo: Calo | None = None) -> dict[str, pa.Array]:
    """Arrow columns (one entry per event) for one batch: each event split into windows of
    at most ``max_hits`` hits (and, with ``calo``, the same events' cell, waveform and
    sample batches, at most ``max_hits`` cells: ``split_cells``), forward passes of at
    most ``window_tokens`` hits and ``window_tokens`` cells."""
    device = model.norm.weight.device
    if calo is None:
        win, cells, waves = split(batch, model.config.max_hits), None, None
    else:  # on the CPU, as in training (waveforms_of reads CPU batches)
        cell_win, waves = window_cells(batch, *calo, model.config.max_hits)
        win, cells = cell_win.hits, cell_win.cells
    outs: list[list[torch.Tensor]] = []
    source: list[torch.Tensor] = []
    cell_outs: list[list[torch.Tensor]] = []
    cell_source: list[torch.Tensor] = []
    hit_cu = win.batch.cu_seqlens.cpu()
    cell_cu = None if cells is None else cells.cu_seqlens.cpu()
    start = 0
    while start < win.n_windows:  # windows in groups within the token budgets
        stop = _stop(hit_cu, start, window_tokens)
        if cell_cu is not None:
            stop = min(stop, _stop(cell_cu, start, window_tokens))
        stop = max(start + 1, stop)
        part = win.slice(start, stop)
        if cells is None or waves is None:
            layer_outs, perm, _ = model.layers(part.batch)
        else:
            lo, hi = int(cells.cu_seqlens[start]), int(cells.cu_seqlens[stop])
            layer_outs, perm, _ = model.layers(
                part.batch.to(device), cells=slice_windows(cells, start, stop).to(device),
                waveforms=waves.of_cells(lo, hi))
            n_part = int(part.batch.cu_seqlens[-1])
            is_cell = perm >= n_part  # cell tokens: n_part + cell index (``layers``)
            cell_outs.append([o[is_cell] for o in layer_outs])
            cell_source.append(cell_win.cell_source[lo + (perm[is_cell] - n_part).cpu()])
            layer_outs, perm = [o[~is_cell] for o in layer_outs], perm[~is_cell]
        outs.append(layer_outs)
        source.append(part.source[perm.to(part.source.device)])
        start = stop
    counts = batch.cu_seqlens[1:] - batch.cu_seqlens[:-1]
    arrays: dict[str, pa.Array] = {
        "run": pa.array(batch.run.cpu().numpy()),
        "event": pa.array(batch.event.cpu().numpy()),
        "n_hits": pa.array(counts.cpu().numpy().astype(np.int32)),
        "n_windows": pa.array(torch.bincount(win.owner, minlength=batch.n_events)
                              .cpu().numpy().astype(np.int32)),
        **_columns("hit", outs, source, batch.cu_seqlens, win.source, win.index,
                   win.batch.cu_seqlens, mode),
    }
    if calo is not None and cells is not None:
        event_cu = calo[0].cu_seqlens
        arrays["n_cells"] = pa.array((event_cu[1:] - event_cu[:-1]).numpy().astype(np.int32))
        arrays.update(_columns("cell", cell_outs, cell_source, event_cu,
                               cell_win.cell_source, win.index, cells.cu_seqlens, mode))
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
    with_cells = bool(model.config.cells)
    if with_cells and not sum(int(s.get("cells") or 0) for s in opened.shards):
        raise NpfmError(str(corpus), f"holds no calorimeter cells, but run {run_dir} was "
                        "pretrained with cells: true", "embed a corpus with calorimeter "
                        "cells (simulated with calorimeters), or use a run pretrained "
                        "with cells: false")
    columns = ("geometry_id", "data_level") + (("split",) if split is not None else ())
    loader = EventLoader(opened, batch_events, event_columns=columns)
    # The same events' cells, waveforms and samples, in the hit loader's batches.
    calo = calo_loaders(opened, batch_events) if with_cells else ()
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("part-*.parquet"), out / SUMMARY]:
        stale.unlink(missing_ok=True)
    files: list[str] = []
    parts: list[dict[str, pa.Array]] = []
    events = hits = embedded = buffered = windows = cells = embedded_cells = 0
    for batch, *calo_batches in zip(loader, *calo, strict=True):
        if split is not None:
            keep = torch.tensor([s == split for s in batch.event_fields["split"]],
                                dtype=torch.bool)
            if not keep.any():
                continue
            batch = _select(batch, keep)
            calo_batches = [_select(b, keep) for b in calo_batches]
        window_tokens = batch_events * model.config.max_hits
        if with_cells:
            cell, wave, sample = calo_batches
            rows = _rows(model, batch, layers, window_tokens, (cell, wave, sample))
            cells += int(cell.cu_seqlens[-1])
            embedded_cells += len(rows["cell_index"].flatten())
        else:
            rows = _rows(model, batch.to(device), layers, window_tokens)
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
        "layers": layers, "n_layers": n_layers, "columns": _names(layers, n_layers),
        "cells": with_cells,
        "cell_columns": _names(layers, n_layers, "cell_") if with_cells else [],
        "dimension": width, "model": json.loads((ckpt / "config.json").read_text()),
        "checkpoint": {"path": str(ckpt), "model_sha256": sha256_file(
            ckpt / "model.safetensors")},
        "corpus": {"path": str(corpus), "manifest_sha256": sha256_file(
            opened.path / "manifest.json")},
        "split": split, "events": events, "hits": hits, "embedded_hits": embedded,
        "cut_hits": hits - embedded, "windows": windows,
        "n_cells": cells if with_cells else None,
        "embedded_cells": embedded_cells if with_cells else None,
        "max_hits": model.config.max_hits, "files": files,
    }
    atomic_write_json(out / SUMMARY, summary)
    return summary
