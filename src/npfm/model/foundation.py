"""The foundation model: tokeniser -> serialisation -> backbone -> pretraining objective.

``FoundationModel(config)(batch, step, objects)`` returns (loss, metrics) for a
``PackedBatch`` of hits whose ``event_fields`` carry ``geometry_id`` and ``data_level``
and, optionally (``config.objects``), the ``PackedBatch`` of the same events' objects
(``EventLoader(group="object")``). An event with hits is tokenised by its hits, one with
no hits by its objects (``npfm.model.sequence``). Each kind is serialised by
``config.order`` (objects by their momentum vector) and cut to its first
``config.max_hits`` tokens in that order; the objective runs per kind with its own head,
and the loss is their token-weighted mean. Randomness (masks) is drawn from
(seed, step), so a resumed run is identical.

With ``config.cells`` (default off, so earlier configs and checkpoints build the same
model), the calorimeter cells of the same events (``EventLoader(group="cell")``, and
optionally their ``Waveforms``) join each event's sequence after its hits, tokenised by
``CellTokenizer``, serialised by the same order and cut to ``max_hits`` cells; every
token then gets a learned token-type embedding (hit, object, cell), and cells have
their own objective head (masked modelling regresses ``CELL_FEATURES``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from npfm.events.loader import PackedBatch
from npfm.model.cells import CELL_FEATURES, CellTokenizer, Waveforms, cell_features
from npfm.model.family import FAMILY, build_backbone
from npfm.model.objectives import BatchInfo, KNNNObjective, MaskedHitObjective
from npfm.model.sequence import (
    TokenPart,
    TokenSequence,
    combine_parts,
    cut,
    object_info,
    objects_of_hitless_events,
)
from npfm.model.serialize import ORDERS
from npfm.model.tokenize import (
    HIT_FEATURES,
    OBJECT_FEATURES,
    HitTokenizer,
    ObjectTokenizer,
    hit_features,
    hit_position,
    object_features,
)
from npfm.model.two_view import TwoViewObjective

Objective = KNNNObjective | MaskedHitObjective
#: Token types of a model with cells (rows of ``FoundationModel.token_type``).
TOKEN_TYPES = ("hit", "object", "cell")


def _backbone(kind: str, size: str) -> tuple[nn.Module, int]:
    if kind == "mamba2":
        return build_backbone(size), FAMILY[size].width
    if kind == "attention":
        from npfm.model.attention import ATTENTION_FAMILY, build_attention

        return build_attention(size), ATTENTION_FAMILY[size].width
    raise ValueError(f"unknown backbone {kind!r}; use mamba2 or attention")


def _objective(config: Any, width: int, n_features: int) -> Objective | TwoViewObjective:
    if config.objective == "two_view":
        return TwoViewObjective(width)
    if config.objective == "masked":
        return MaskedHitObjective(width, n_features)
    return KNNNObjective(width, config.k, leak_free=config.objective == "knnn_leakfree")


class FoundationModel(nn.Module):
    """Hit (and object) tokens through a Mamba-2 or attention backbone, trained by masked
    modelling, kNNN or two-view self-distillation."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.backbone, width = _backbone(config.backbone, config.size)
        self.tokenizer = HitTokenizer(width)
        self.norm = nn.LayerNorm(width)
        self.order = ORDERS[config.order]
        self.objective = _objective(config, width, len(HIT_FEATURES))
        # Built last, so hit-only parameters start as without object tokens.
        self.object_tokenizer: ObjectTokenizer | None = None
        self.object_objective: Objective | TwoViewObjective | None = None
        if getattr(config, "objects", False):
            self.object_tokenizer = ObjectTokenizer(width, seed=config.seed)
            if config.objective != "two_view":  # two views cover every token at once
                self.object_objective = _objective(config, width, len(OBJECT_FEATURES))
        self.cell_tokenizer: CellTokenizer | None = None
        self.token_type: nn.Embedding | None = None
        self.cell_objective: Objective | TwoViewObjective | None = None
        if getattr(config, "cells", False):
            self.cell_tokenizer = CellTokenizer(width)
            self.token_type = nn.Embedding(len(TOKEN_TYPES), width)
            if config.objective != "two_view":
                self.cell_objective = _objective(config, width, len(CELL_FEATURES))

    def serialise(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Permutation into serialised order, cut to ``max_hits`` per event, and the new
        ``cu_seqlens``."""
        f, cu = batch.fields, batch.cu_seqlens
        return cut(self.order(f["hit_x"], f["hit_y"], f["hit_z"], cu), cu, self.config.max_hits)

    def sequence(self, batch: PackedBatch, objects: PackedBatch | None = None,
                 cells: PackedBatch | None = None, waveforms: Waveforms | None = None
                 ) -> TokenSequence:
        """The serialised tokens of ``batch``'s events: hits, or objects (from ``objects``,
        the same events' object batch) where an event has no hit; then the events'
        ``cells`` (with their ``waveforms``) for a model built with cells."""
        geometry, levels = batch.event_fields["geometry_id"], batch.event_fields["data_level"]
        perm, hits_cu = self.serialise(batch)
        hit_feats = hit_features(batch.fields, batch.cu_seqlens, geometry)[perm]
        hit_tokens = self.tokenizer(batch, geometry, levels)[perm]
        empty = perm.new_zeros(0)
        obj_perm, obj_cu = empty, torch.zeros_like(hits_cu)
        obj_feats = hit_feats.new_zeros(0, len(OBJECT_FEATURES))
        obj_tokens = hit_tokens.new_zeros(0, hit_tokens.shape[1])
        if objects is not None:
            if self.object_tokenizer is None:
                raise ValueError("objects given to a model built without object tokens; "
                                 "set objects: true in the config")
            sub = objects_of_hitless_events(batch, objects.to(hits_cu.device))
            f = sub.fields
            obj_perm, obj_cu = cut(self.order(f["object_px"], f["object_py"], f["object_pz"],
                                              sub.cu_seqlens), sub.cu_seqlens,
                                   self.config.max_hits)
            obj_feats = object_features(f)[obj_perm]
            obj_tokens = self.object_tokenizer(sub, geometry, levels)[obj_perm]
        parts = [(hit_tokens, hits_cu), (obj_tokens, obj_cu)]
        cell_part = self._cells(batch, cells, waveforms) if cells is not None else None
        if cell_part is not None:
            parts.append(cell_part[:2])
        if self.token_type is not None:
            parts = [(t + self.token_type.weight[i].to(t.dtype), cu_)
                     for i, (t, cu_) in enumerate(parts)]
        tokens, cu, part_slots = combine_parts(parts)
        return TokenSequence(tokens, cu, TokenPart(perm, part_slots[0], hits_cu, hit_feats),
                             TokenPart(obj_perm, part_slots[1], obj_cu, obj_feats),
                             None if cell_part is None else TokenPart(
                                 cell_part[2], part_slots[2], cell_part[1], cell_part[3]))

    def _cells(self, batch: PackedBatch, cells: PackedBatch, waveforms: Waveforms | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Serialised cell tokens, their cu_seqlens, permutation and features."""
        if self.cell_tokenizer is None:
            raise ValueError("cells given to a model built without cell tokens; set cells: "
                             "true in the config")
        if not (torch.equal(batch.run.cpu(), cells.run.cpu())
                and torch.equal(batch.event.cpu(), cells.event.cpu())):
            raise ValueError("the hit and cell batches hold different events; load both with "
                             "the same corpus, batch size, shuffle, seed, rank and epoch")
        geometry, levels = batch.event_fields["geometry_id"], batch.event_fields["data_level"]
        f, cu = cells.fields, cells.cu_seqlens
        perm, new_cu = cut(self.order(f["cell_x"], f["cell_y"], f["cell_z"], cu), cu,
                           self.config.max_hits)
        tokens = self.cell_tokenizer(cells, geometry, levels, waveforms)[perm]
        return tokens, new_cu, perm, cell_features(f, cu, geometry)[perm].to(tokens.device)

    def layers(self, batch: PackedBatch, objects: PackedBatch | None = None,
               cells: PackedBatch | None = None, waveforms: Waveforms | None = None
               ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """The token embedding and each backbone block's output (serialised order), the
        permutation, and cu_seqlens.

        The permutation gives each token's packed index in its own kind's batch: the hit
        index for hit tokens and, with ``objects``, the object index for the tokens of
        events without hits; with ``cells``, the number of hits in ``batch`` plus the
        cell index for cell tokens.
        """
        seq = self.sequence(batch, objects, cells, waveforms)
        perm = seq.cu_seqlens.new_zeros(len(seq.tokens))
        perm[seq.hits.slots] = seq.hits.source
        perm[seq.objects.slots] = seq.objects.source
        if seq.cells is not None:
            perm[seq.cells.slots] = seq.cells.source + int(batch.cu_seqlens[-1])
        return [seq.tokens, *self.backbone(seq.tokens, seq.cu_seqlens)], perm, seq.cu_seqlens

    def forward(self, batch: PackedBatch, step: int, objects: PackedBatch | None = None,
                cells: PackedBatch | None = None, waveforms: Waveforms | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        seq = self.sequence(batch, objects, cells, waveforms)
        tokens = seq.tokens
        mask = None
        generator = torch.Generator(device=tokens.device)
        generator.manual_seed(self.config.seed * 1_000_003 + step)
        if isinstance(self.objective, TwoViewObjective):
            return self.objective(lambda view: self.norm(
                self.backbone(view, seq.cu_seqlens)[-1]), tokens, generator)
        if isinstance(self.objective, MaskedHitObjective):
            mask = self.objective.choose_mask(len(tokens), generator)
            tokens = self.objective.apply_mask(tokens, _rows(mask, seq.hits.slots))
            if isinstance(self.object_objective, MaskedHitObjective):
                tokens = self.object_objective.apply_mask(tokens,
                                                          _rows(mask, seq.objects.slots))
            if isinstance(self.cell_objective, MaskedHitObjective) and seq.cells is not None:
                tokens = self.cell_objective.apply_mask(tokens, _rows(mask, seq.cells.slots))
        hidden = self.norm(self.backbone(tokens, seq.cu_seqlens)[-1])
        info = hit_info(seq.hits.features, seq.hits.cu_seqlens,
                        None if mask is None else mask[seq.hits.slots])
        loss, metrics = self.objective(hidden[seq.hits.slots], info)
        if not isinstance(self.object_objective, KNNNObjective | MaskedHitObjective):
            return self._with_cells(loss, metrics, hidden, seq, mask)
        object_mask = None if mask is None else mask[seq.objects.slots]
        object_loss, object_metrics = self.object_objective(
            hidden[seq.objects.slots], object_info(seq.objects, object_mask))
        share = len(seq.objects.slots) / max(len(tokens), 1)  # a float: exact 0 or 1 alone
        loss = (1 - share) * loss + share * object_loss
        # Metrics of a kind that has no token in this batch are left out (not 0 or NaN).
        metrics = {**(metrics if share < 1 else {}),
                   **({f"object_{k}": v for k, v in object_metrics.items()} if share else {}),
                   "object_token_fraction": torch.tensor(share)}
        return self._with_cells(loss, metrics, hidden, seq, mask)

    def _with_cells(self, loss: torch.Tensor, metrics: dict[str, torch.Tensor],
                    hidden: torch.Tensor, seq: TokenSequence, mask: torch.Tensor | None
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss with the cell objective's, weighted by the cells' token share. A batch
        given cells but holding none keeps the cell head in the graph with zero gradient
        (DDP expects every parameter to take part)."""
        if not isinstance(self.cell_objective, KNNNObjective | MaskedHitObjective) \
                or seq.cells is None:
            return loss, metrics
        if len(seq.cells.slots) == 0:
            return loss + 0 * sum(p.sum() for p in self.cell_objective.parameters()), metrics
        cells = seq.cells
        cell_loss, cell_metrics = self.cell_objective(hidden[cells.slots], hit_info(
            cells.features, cells.cu_seqlens, None if mask is None else mask[cells.slots]))
        share = len(cells.slots) / max(len(hidden), 1)
        return ((1 - share) * loss + share * cell_loss,
                {**metrics, **{f"cell_{k}": v for k, v in cell_metrics.items()},
                 "cell_token_fraction": torch.tensor(share)})


def hit_info(features: torch.Tensor, cu_seqlens: torch.Tensor,
             mask: torch.Tensor | None = None) -> BatchInfo:
    """Objective inputs for hit tokens (``hit_features`` rows, serialised order).

    kNNN neighbours are nearest in (eta / ETA_MAX, cos phi / pi, sin phi / pi, r / r_max),
    the chord form of FM4NPP's normalised (eta, phi, r) metric, and regress
    ``hit_position``'s (eta, phi / pi, r) differences.
    """
    position = hit_position(features)
    pos = torch.stack([features[:, 0], features[:, 1] / math.pi, features[:, 2] / math.pi,
                       features[:, 3]], 1)
    return BatchInfo(pos=pos, r=position[:, 2], cu_seqlens=cu_seqlens, features=features,
                     mask=mask, target=position)


def _rows(mask: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """(N,) bool: ``mask`` where the sequence position is in ``slots``, else False."""
    rows = torch.zeros_like(mask)
    rows[slots] = mask[slots]
    return rows
