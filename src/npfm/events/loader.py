"""Stream events from corpus shards into packed or padded torch tensors.

One group of list columns is read (hits by default; objects or particles for
object-level events). A batch packs the elements of ``batch_size`` events end to end,
with ``cu_seqlens`` (B+1) marking event boundaries, as varlen attention and SSM kernels
expect; ``padded()`` turns it into (B, L) tensors and a mask.

Tensor conventions: floating columns become float32 with NaN where a value is null;
integer and boolean columns become int64 with ``IGNORE_INDEX`` (-100, PyTorch's default
``ignore_index``) where null; vocabulary strings (subsystem, object type) become their
integer codes from ``vocabulary.yaml``. Units are those of the event model (cm, ns, GeV).

Two helper threads per iteration: one decodes the next row group while the current one is
converted (one row group held ahead), one hashes the shards ahead of the reading.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import IterableDataset, get_worker_info

from npfm.events import vocabulary
from npfm.events.checks import check_table
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.loader_checks import IGNORE_INDEX, convert_checked
from npfm.events.schema import ANCHORS, BY_NAME, column, group_columns
from npfm.events.shards import iter_row_groups

DEFAULT_HIT_COLUMNS = ("hit_x", "hit_y", "hit_z", "hit_t", "hit_edep", "hit_subsystem",
                       "hit_layer", "hit_particle", "hit_track_id", "hit_pid_class", "hit_noise")


@dataclass
class PackedBatch:
    """Elements of B events packed end to end; ``fields`` maps column name to (N,)."""

    fields: dict[str, torch.Tensor]
    cu_seqlens: torch.Tensor  # (B+1,) int64 offsets of each event's first element
    run: torch.Tensor  # (B,) int64
    event: torch.Tensor  # (B,) int64
    event_fields: dict[str, list[Any]]  # requested event-level columns, B values each

    @property
    def n_events(self) -> int:
        return len(self.run)

    def to(self, device: torch.device | str) -> PackedBatch:
        """The batch with its tensors on ``device``."""
        return PackedBatch({k: v.to(device) for k, v in self.fields.items()},
                           self.cu_seqlens.to(device), self.run.to(device),
                           self.event.to(device), self.event_fields)

    def padded(self, max_len: int | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(B, L) tensors and a (B, L) bool mask; longer events are cut at ``max_len``."""
        counts = self.cu_seqlens[1:] - self.cu_seqlens[:-1]
        length = int(counts.max()) if len(counts) else 0
        length = min(length, max_len) if max_len is not None else length
        event = torch.repeat_interleave(torch.arange(self.n_events), counts)
        pos = torch.arange(len(event)) - self.cu_seqlens[:-1][event]
        keep = pos < length
        mask = torch.zeros(self.n_events, length, dtype=torch.bool)
        mask[event[keep], pos[keep]] = True
        out = {}
        for name, values in self.fields.items():
            fill = float("nan") if values.is_floating_point() else IGNORE_INDEX
            dense = torch.full((self.n_events, length), fill, dtype=values.dtype)
            dense[event[keep], pos[keep]] = values[keep]
            out[name] = dense
        return out, mask


@dataclass
class _Chunk:
    """Flat numpy columns of a run of events (one row group, possibly sliced)."""

    fields: dict[str, np.ndarray]
    counts: np.ndarray  # elements per event
    meta: dict[str, np.ndarray]  # per event: run, event, and "column:<name>" requested

    def slice(self, start: int, stop: int) -> _Chunk:
        offsets = np.concatenate([[0], np.cumsum(self.counts)])
        lo, hi = offsets[start], offsets[stop]
        return _Chunk({k: v[lo:hi] for k, v in self.fields.items()}, self.counts[start:stop],
                      {k: v[start:stop] for k, v in self.meta.items()})

    def take(self, order: np.ndarray) -> _Chunk:
        """Events reordered by ``order``, their elements moved with them."""
        starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])[order]
        counts = self.counts[order]
        new_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        index = np.repeat(starts - new_starts, counts) + np.arange(int(counts.sum()))
        return _Chunk({k: v[index] for k, v in self.fields.items()}, counts,
                      {k: v[order] for k, v in self.meta.items()})


def _concat(chunks: list[_Chunk]) -> _Chunk:
    if len(chunks) == 1:
        return chunks[0]
    return _Chunk({k: np.concatenate([c.fields[k] for c in chunks]) for k in chunks[0].fields},
                  np.concatenate([c.counts for c in chunks]),
                  {k: np.concatenate([c.meta[k] for c in chunks]) for k in chunks[0].meta})


class EventLoader(IterableDataset):
    """Iterate over a corpus in ``PackedBatch`` es.

    Args:
        corpus: an opened ``Corpus``.
        batch_size: events per batch (the last batch may be smaller unless ``drop_last``).
        group: "hit", "particle", "object", or a calorimeter group ("cell", ...).
        columns: list columns of that group to load (default: positions, time, energy,
            subsystem, layer and all labels for hits; every flat column otherwise).
        subsystems: keep only hits of these subsystems (hits only).
        shuffle, seed: shuffle shard order and events within each row group, per epoch.
        rank, world_size: the DDP process's share of shards; DataLoader workers split
            that share again.
        verify: check each shard's sha256 (once per process, in a background thread that
            runs ahead of the reading) before any of its events leave the loader; a shard
            that fails to read is reported by its checksum first. Every row group read is
            value-checked, whatever ``verify`` says: by the fast checks of
            ``npfm.events.loader_checks`` or, where they prove nothing, ``check_table``.
        event_columns: event-level columns to pass along per event (e.g. geometry_id,
            data_level), as Python values in ``PackedBatch.event_fields``.
    """

    def __init__(self, corpus: Corpus, batch_size: int, *, group: str = "hit",
                 columns: Sequence[str] | None = None, subsystems: Sequence[str] | None = None,
                 shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                 rank: int = 0, world_size: int = 1, verify: bool = True,
                 event_columns: Sequence[str] = ()) -> None:
        super().__init__()
        if group not in ANCHORS:
            raise NpfmError(f"group {group!r}", "unknown group", f"use {', '.join(ANCHORS)}")
        flat = [c.name for c in group_columns(group) if not pa.types.is_list(c.type)]
        flat += [n for n in corpus.extensions if n.startswith(f"{group}_ext_")]
        default = DEFAULT_HIT_COLUMNS if group == "hit" else tuple(flat)
        self.columns = tuple(columns) if columns is not None else default
        for name in self.columns:
            if name not in flat:
                raise NpfmError(f"column {name!r}", f"not a loadable {group} column",
                                f"choose from {', '.join(flat)}")
        if subsystems is not None and group != "hit":
            raise NpfmError("subsystems", "selection applies to hits only", "drop --subsystems")
        self.selected = None if subsystems is None else np.array(
            [_code("subsystems", s, "subsystems") for s in subsystems])
        self.corpus, self.batch_size, self.group = corpus, batch_size, group
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size, self.verify = rank, world_size, verify
        self.epoch = 0
        for name in event_columns:
            if name not in BY_NAME or BY_NAME[name].level != "event":
                raise NpfmError(f"event column {name!r}", "not an event-level column",
                                "see docs/event-model.md (e.g. geometry_id, data_level)")
        self.event_columns = tuple(event_columns)
        needed = set(self.columns) | {ANCHORS[group][0]}
        if self.selected is not None:
            needed.add("hit_subsystem")
        self._read = sorted(needed | {"run", "event", *self.event_columns})
        self._dict = [f"{n}.list.element" for n in self._read if column(n).vocabulary
                      and column(n).level != "event" and pa.types.is_string(column(n).type)]

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle order (call once per epoch, as with DistributedSampler)."""
        self.epoch = epoch

    def _my_shards(self) -> list[dict[str, Any]]:
        shards = self.corpus.shards
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.shuffle:
            shards = [shards[i] for i in rng.permutation(len(shards))]
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        stride, start = self.world_size * workers, self.rank * workers + worker
        return shards[start::stride]

    def _chunks(self) -> Iterator[_Chunk]:
        shards = self._my_shards()
        pool = ThreadPoolExecutor(1, "npfm-sha256") if self.verify and shards else None
        reader = ThreadPoolExecutor(1, "npfm-read")
        try:
            hashed = [pool.submit(self.corpus.verify_checksum, e) for e in shards] if pool \
                else [None] * len(shards)
            rng = np.random.default_rng([self.seed, self.epoch, self.rank])
            for entry, checksum in zip(shards, hashed, strict=True):
                for chunk in self._shard_chunks(entry, checksum, reader):
                    yield chunk.take(rng.permutation(len(chunk.counts))) if self.shuffle \
                        else chunk
        finally:
            reader.shutdown(wait=False, cancel_futures=True)
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _shard_chunks(self, entry: dict[str, Any], checksum: Future[None] | None,
                      reader: ThreadPoolExecutor) -> Iterator[_Chunk]:
        """Checked chunks of one shard; none leaves before ``checksum`` (its sha256
        comparison) has passed, and its failure outranks any error of the reading."""
        path, offset = self.corpus.shard_path(entry), 0
        try:
            pf = self.corpus.open_shard(entry, verify=False, read_dictionary=self._dict)
            for table in _ahead(iter_row_groups(path, pf, self._read), reader):
                chunk = self._convert(table, str(path), offset)
                offset += table.num_rows
                if checksum is not None:
                    checksum.result()
                    checksum = None
                yield chunk
        except Exception:
            failed = checksum.exception() if checksum is not None else None
            if failed is not None:
                raise failed from None
            raise

    def __iter__(self) -> Iterator[PackedBatch]:
        queue: list[_Chunk] = []  # chunks not yet fully batched; the first may be partial
        n_queued = 0
        for chunk in self._chunks():
            queue.append(chunk)
            n_queued += len(chunk.counts)
            while n_queued >= self.batch_size:
                parts, need = [], self.batch_size
                while need:
                    head = queue[0]
                    take = min(need, len(head.counts))
                    parts.append(head.slice(0, take))
                    if take == len(head.counts):
                        queue.pop(0)
                    else:
                        queue[0] = head.slice(take, len(head.counts))
                    need -= take
                n_queued -= self.batch_size
                yield _to_batch(_concat(parts))
        if n_queued and not self.drop_last:
            yield _to_batch(_concat(queue))

    def _convert(self, table: pa.Table, where: str, row_offset: int) -> _Chunk:
        """A value-checked row group as flat numpy columns."""
        converted = convert_checked(table, self.group)
        if not converted.proven:
            check_table(table, where, row_offset=row_offset)
        if converted.unknown:  # a dictionary name that no value uses: still refused
            _code(*converted.unknown[0], "shard dictionary")
        counts = converted.counts
        fields = {n: converted.fields[n] for n in self.columns}
        if self.selected is not None:
            keep = np.isin(converted.fields["hit_subsystem"], self.selected)
            owner = np.repeat(np.arange(len(counts)), counts)
            counts = np.bincount(owner[keep], minlength=len(counts)).astype(np.int64)
            fields = {k: v[keep] for k, v in fields.items()}
        meta = {f"column:{name}": np.array(table.column(name).to_pylist(), dtype=object)
                for name in self.event_columns}
        meta["run"] = table.column("run").to_numpy()
        meta["event"] = table.column("event").to_numpy()
        return _Chunk(fields, counts, meta)


def _code(vocab: str, name: str, where: str) -> int:
    try:
        return vocabulary.code(vocab, name)
    except KeyError:
        raise NpfmError(where, f"unknown name {name!r}",
                        f"use one of {', '.join(vocabulary.names(vocab))}") from None


def _ahead(tables: Iterator[pa.Table], reader: ThreadPoolExecutor) -> Iterator[pa.Table]:
    """``tables`` with the next one decoded in ``reader`` while the caller works."""
    pending = reader.submit(next, tables, None)
    while (table := pending.result()) is not None:
        pending = reader.submit(next, tables, None)
        yield table


def _to_batch(chunk: _Chunk) -> PackedBatch:
    cu = np.concatenate([[0], np.cumsum(chunk.counts)]).astype(np.int64)
    return PackedBatch({k: torch.from_numpy(_writable(v)) for k, v in chunk.fields.items()},
                       torch.from_numpy(cu),
                       torch.from_numpy(chunk.meta["run"].astype(np.int64)),
                       torch.from_numpy(chunk.meta["event"].astype(np.int64)),
                       {k.removeprefix("column:"): v.tolist() for k, v in chunk.meta.items()
                        if k.startswith("column:")})


def _writable(array: np.ndarray) -> np.ndarray:
    """Arrow hands out read-only views; torch tensors must own writable memory."""
    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()
