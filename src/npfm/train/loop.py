"""The pretraining loop (one function, in the spirit of nanoGPT).

AdamW with FM4NPP's betas and weight decay (not on norms, biases, embeddings or SSM
parameters), linear warmup then cosine decay, gradient clipping, bf16 autocast on a GPU,
DDP or FSDP (``parallel: fsdp``, ``npfm.train.parallel``) under ``torchrun``; the logged
loss is the mean over ranks. Every source of randomness is a function of (seed, step): model
initialisation from the seed, data order from per-corpus shuffles and a per-step domain
draw, masks from the step. A killed run therefore resumes from its latest checkpoint,
fast-forwards the data, and retraces the loss curve of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from npfm.events.cell_windows import CellWindows, split_cells
from npfm.events.corpus import Corpus
from npfm.events.loader import EventLoader, PackedBatch
from npfm.events.shards import atomic_write_bytes
from npfm.events.windows import (
    concat_batches,
    concat_pairs,
    rebatch,
    regroup,
    slice_pair,
    slice_windows,
    with_objects,
)
from npfm.model.cells import CELL_COLUMNS, Waveforms, waveforms_of
from npfm.model.foundation import FoundationModel
from npfm.model.sampling import TemperatureSampler
from npfm.train import checkpoint
from npfm.train.config import PretrainConfig, resumed_config
from npfm.train.guard import require_finite

METRICS_LOG = "metrics.jsonl"


def lr_at(step: int, config: PretrainConfig) -> float:
    """Linear warmup to ``lr`` over ``warmup`` steps, then cosine to ``min_lr``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, plain = [], []
    skip = {id(p) for m in model.modules() for name in getattr(m, "_no_weight_decay", ())
            if isinstance(p := getattr(m, name, None), torch.nn.Parameter)}
    for name, p in model.named_parameters():
        if p.ndim < 2 or id(p) in skip or "embed" in name:
            plain.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": plain, "weight_decay": 0.0}]


Batch = tuple[PackedBatch, PackedBatch | None]


def _pairs(hits: EventLoader, objects: EventLoader | None) -> Iterator[Batch]:
    """(hit batch, object batch of the same events): two loaders with equal settings
    yield the same events in the same order (checked by ``FoundationModel``)."""
    if objects is None:
        yield from ((batch, None) for batch in hits)
    else:
        yield from zip(hits, objects, strict=True)


Cells = tuple[PackedBatch, Waveforms] | None


CellPart = tuple[PackedBatch, PackedBatch | None, PackedBatch, Waveforms]
#: The calorimeter groups loaded beside the hits with ``cells: true``.
CALO_GROUPS = ("cell", "waveform", "sample")


def calo_loaders(corpus: Corpus, batch_size: int, **settings: Any
                 ) -> tuple[EventLoader, ...]:
    """Loaders of the ``CALO_GROUPS`` (cells with ``CELL_COLUMNS``) with the hit loader's
    ``settings`` (shuffle, seed, rank, ...), so all yield the same events in one order."""
    return tuple(EventLoader(corpus, batch_size, group=group,
                             columns=CELL_COLUMNS if group == "cell" else None, **settings)
                 for group in CALO_GROUPS)


def window_cells(hits: PackedBatch, cells: PackedBatch, waveforms: PackedBatch,
                 samples: PackedBatch, max_hits: int) -> tuple[CellWindows, Waveforms]:
    """The events' hits and cells as eta-phi windows (``split_cells``) and the cells'
    waveforms (from the loader batches of the same events) in windowed cell order."""
    win = split_cells(hits, cells, max_hits)
    return win, waveforms_of(cells, waveforms, samples).reindexed(win.cell_source)


def _with_cells(pairs: Iterator[Batch], cells: Iterator[PackedBatch], waveforms: EventLoader,
                samples: EventLoader, max_hits: int, windows_per_batch: int
                ) -> Iterator[tuple[PackedBatch, PackedBatch | None, Cells]]:
    """The (hit, object) batches with the same events' cells and waveforms, as batches of
    ``windows_per_batch`` eta-phi windows of at most ``max_hits`` hits and ``max_hits``
    cells each (``npfm.events.cell_windows``; events within both are one window)."""

    def windowed() -> Iterator[CellPart]:
        for (hits, objects), cell, wave, sample in zip(pairs, cells, waveforms, samples,
                                                       strict=True):
            win, waves = window_cells(hits, cell, wave, sample, max_hits)
            yield (win.hits.batch, None if objects is None else with_objects(win.hits, objects),
                   win.cells, waves)

    def cut(part: CellPart, start: int, stop: int) -> CellPart:
        cu = part[2].cu_seqlens
        return (*slice_pair(part[:2], start, stop), slice_windows(part[2], start, stop),
                part[3].of_cells(int(cu[start]), int(cu[stop])))

    def join(parts: list[CellPart]) -> CellPart:
        cells = [p[2] for p in parts]
        return (*concat_pairs([p[:2] for p in parts]), concat_batches(cells),
                Waveforms.concat([p[3] for p in parts], [int(c.cu_seqlens[-1]) for c in cells]))

    for hits, objects, cell, wave in regroup(windowed(), windows_per_batch,
                                             lambda p: p[0].n_events, cut, join):
        yield hits, objects, (cell, wave)


def batches(config: PretrainConfig, rank: int = 0, world: int = 1
            ) -> Iterator[tuple[str, PackedBatch, PackedBatch | None, Cells]]:
    """Endless (corpus name, hit batch, object batch or None, (cell batch, waveforms) or
    None) stream: domains drawn by temperature, each corpus shuffled anew every epoch;
    deterministic for a given config. Events beyond ``max_hits`` are split into eta-phi
    windows (``npfm.events.windows``); a batch holds ``batch_events`` windows (events
    within the budget are one window each), the last of an epoch the windows left (no
    event is dropped).

    With ``config.objects`` the object batch holds the same events' reconstructed objects,
    except for corpora with a ``subsystems`` selection (hit-level pretraining: an event
    without selected hits is not replaced by its objects). With ``config.cells`` the
    events' calorimeter cells and waveforms come along, windowed with the hits (at most
    ``max_hits`` hits and ``max_hits`` cells per window, ``npfm.events.cell_windows``).
    """
    corpora = {c["name"]: Corpus.open(c["path"]) for c in config.corpora}
    subsystems = {c["name"]: c.get("subsystems") for c in config.corpora}

    settings: dict[str, Any] = {"shuffle": True, "seed": config.seed, "rank": rank,
                                "world_size": world,
                                "event_columns": ("geometry_id", "data_level")}

    def loader(name: str, group: str) -> EventLoader:
        return EventLoader(corpora[name], config.batch_events, group=group,
                           subsystems=subsystems[name] if group == "hit" else None, **settings)

    loaders = {name: (loader(name, "hit"), loader(name, "object")
                      if config.objects and subsystems[name] is None else None)
               for name in corpora}
    calo = {name: calo_loaders(corpora[name], config.batch_events, **settings)
            for name in corpora} if config.cells else {}

    def stream(name: str) -> Iterator[tuple[PackedBatch, PackedBatch | None, Cells]]:
        if not config.cells:
            return ((h, o, None) for h, o in rebatch(_pairs(*loaders[name]), config.max_hits,
                                                     config.batch_events))
        cell, wave, sample = calo[name]
        return _with_cells(_pairs(*loaders[name]), iter(cell), wave, sample, config.max_hits,
                           config.batch_events)

    sampler = TemperatureSampler({n: c.n_events for n, c in corpora.items()},
                                 config.temperature, config.seed)
    streams: dict[str, Iterator[tuple[PackedBatch, PackedBatch | None, Cells]]] = {}
    epochs = dict.fromkeys(loaders, 0)
    for name in sampler:
        while True:
            pair = next(streams.setdefault(name, stream(name)), None)
            if pair is not None:
                break
            epochs[name] += 1
            if epochs[name] > 1_000_000:
                raise RuntimeError(f"corpus {name} yields no batch of {config.batch_events}")
            for each in (*loaders[name], *calo.get(name, ())):
                if each is not None:
                    each.set_epoch(epochs[name])
            del streams[name]
        yield name, *pair


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log lines of steps <= ``step`` (a killed run may have logged further)."""
    if path.exists():
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()
                 and json.loads(ln)["step"] <= step]
        atomic_write_bytes(path, "".join(f"{ln}\n" for ln in lines).encode())


def pretrain(config: PretrainConfig, run_dir: Path, *,
             progress: Callable[[int, dict[str, float]], None] | None = None,
             allow_config_change: bool = False) -> dict[str, Any]:
    """Train (or resume) the run in ``run_dir``; returns the last logged metrics.

    A resume with another config (beyond steps and logging) is refused unless
    ``allow_config_change``; the checkpoints then record both configs (``history``).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) \
        if torch.cuda.is_available() else torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model = FoundationModel(config).to(device)
    step, state, recorded = 0, None, config.as_dict()
    if (last := checkpoint.latest(run_dir)) is not None:
        saved = json.loads((last / "config.json").read_text())
        recorded = resumed_config(saved, config, int(last.name[5:]), str(run_dir),
                                  allow_config_change)
        state = checkpoint.load(last, model)  # full weights, before any sharding
        step = int(state["step"])
    fsdp = world > 1 and config.parallel == "fsdp"
    if fsdp:
        from npfm.train import parallel  # torch.distributed.tensor: seconds to import

        parallel.shard(model)
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr,
                                  betas=config.betas)
    if state is not None:
        if fsdp:
            parallel.load_optimizer(model, optimizer, state["optimizer"])
        else:
            optimizer.load_state_dict(state["optimizer"])
    if rank == 0:
        _truncate_log(run_dir / METRICS_LOG, step)
    trained = torch.nn.parallel.DistributedDataParallel(model) \
        if world > 1 and not fsdp else model
    data = batches(config, rank, world)
    for _ in range(step):  # fast-forward the data to where the checkpoint stopped
        next(data)
    metrics: dict[str, Any] = {}
    with open(run_dir / METRICS_LOG, "a") as log:
        while step < config.steps:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config)
            domain, batch, objects, cells = next(data)
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=device.type == "cuda"):
                loss, metrics = trained(batch.to(device), step,
                                        None if objects is None else objects.to(device),
                                        *(() if cells is None else (cells[0].to(device),
                                                                    cells[1])))
            mean_loss = _mean_over_ranks(loss, world)  # every rank sees a non-finite one
            require_finite(mean_loss, f"loss on a batch of {domain}", str(run_dir), step + 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            require_finite(_scalar(norm), "gradient norm", str(run_dir), step + 1)
            optimizer.step()
            step += 1
            tokens = int(batch.cu_seqlens[-1])
            metrics = {"step": step, "loss": mean_loss,
                       "lr": lr_at(step - 1, config), "grad_norm": _scalar(norm),
                       "domain": domain, "tokens": tokens,
                       "tokens_per_s": tokens / max(time.perf_counter() - start, 1e-9),
                       **{k: float(v) for k, v in metrics.items()}}
            if rank == 0 and step % config.log_every == 0:
                log.write(json.dumps(metrics) + "\n")
                log.flush()
            if progress:
                progress(step, metrics)
            if step % config.checkpoint_every == 0 or step == config.steps:
                weights, optim = parallel.full_state(model, optimizer) if fsdp else (None, None)
                if rank == 0:
                    checkpoint.save(run_dir, step, model, optimizer, recorded, {},
                                    weights=weights, optimizer_state=optim)
    if world > 1:
        dist.destroy_process_group()
    return metrics


def _scalar(value: torch.Tensor) -> float:
    """A scalar tensor, or a sharded DTensor scalar (FSDP's gradient norm), as a float."""
    full = getattr(value, "full_tensor", None)
    return float(full() if full is not None else value)


def _mean_over_ranks(loss: torch.Tensor, world: int) -> float:
    """The step's loss averaged over the data-parallel ranks (collective when world > 1)."""
    value = loss.detach().float().clone()
    if world > 1:
        dist.all_reduce(value)
        value /= world
    return value.item()
