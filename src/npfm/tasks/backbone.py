"""The backbone under a task head, in one of five training modes.

- ``frozen``: the pretrained backbone, frozen (the foundation-model adapter setting).
- ``adapter_only``: the same architecture with randomly initialised blocks and the
  pretrained run's token embedder, frozen: what the head alone can do without
  pretraining of the backbone (FM4NPP's AdapterOnly shares the embedder likewise).
- ``lora``: the pretrained backbone frozen, with trainable low-rank updates
  (Hu et al., arXiv:2106.09685) on its linear layers.
- ``full``: the pretrained backbone, fine-tuned end to end.
- ``scratch``: the architecture randomly initialised and trained end to end.
- ``raw``: no backbone: the standardised raw hit features (``RawHitFeatures``), the
  baseline that any backbone's features must beat.

``hit_layers(model, batch)`` gives the per-layer outputs (the token embedding first, then
each block) in the events' original hit order; tasks set ``max_hits`` high so that no hit
is cut. ``token_layers(model, batch, cells)`` gives them for hits and calorimeter cells
(each event's hits, then its cells, in original order) for tasks that see cells.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from npfm.events import vocabulary
from npfm.events.errors import NpfmError
from npfm.events.loader import PackedBatch
from npfm.model.cells import cell_features
from npfm.model.foundation import FoundationModel
from npfm.model.sequence import combine
from npfm.model.tokenize import hit_features
from npfm.train.embed import load_model

MODES = ("frozen", "adapter_only", "lora", "full", "scratch", "raw")
PRETRAINED_MODES = ("frozen", "lora", "full")
TRAINED_BACKBONE = ("lora", "full", "scratch")
NO_CUT = 1_000_000  # max_hits for tasks: every hit gets a feature


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * B(A(x))`` with ``base`` frozen and B starting at zero."""

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 8.0) -> None:
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.down = nn.Linear(base.in_features, rank, bias=False)
        self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.up(self.down(x))


def apply_lora(module: nn.Module, rank: int = 4, alpha: float = 8.0) -> int:
    """Freeze ``module`` and wrap each of its ``nn.Linear`` layers; returns how many."""
    module.requires_grad_(False)
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, LoRALinear(child, rank, alpha))
            count += 1
        else:
            count += apply_lora(child, rank, alpha)
    return count


class RawHitFeatures(nn.Module):
    """Standardised raw hit features as a one-"layer" backbone (mode ``raw``).

    ``layers(batch)`` -> ([(N, 7 + S + 1)], identity permutation, cu_seqlens): the
    ``hit_features`` (eta / 4, cos phi, sin phi, r / r_max, z / z_max, z-scored log
    energy and its missing flag) and a one-hot of the subsystem (S vocabulary codes plus
    one for null or unknown). With ``cells``, every token (hits, then cells) holds
    [is_cell, hit features or zeros, ``cell_features`` or zeros, subsystem one-hot] and
    the permutation numbers cells after the batch's hits, as ``FoundationModel.layers``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.n_subsystems = len(vocabulary.names("subsystems"))
        self.config = None

    def _onehot(self, sub: torch.Tensor) -> torch.Tensor:
        sub = torch.where((sub >= 0) & (sub < self.n_subsystems), sub, self.n_subsystems)
        return F.one_hot(sub, self.n_subsystems + 1).float()

    def layers(self, batch: PackedBatch, cells: PackedBatch | None = None
               ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        geometry = batch.event_fields["geometry_id"]
        feats = hit_features(batch.fields, batch.cu_seqlens, geometry)
        onehot = self._onehot(batch.fields["hit_subsystem"])
        if cells is None:
            perm = torch.arange(len(feats), device=feats.device)
            return [torch.cat([feats, onehot], 1)], perm, batch.cu_seqlens
        cell = cell_features(cells.fields, cells.cu_seqlens, geometry)
        n, m = len(feats), len(cell)
        hit_rows = torch.cat([feats.new_zeros(n, 1), feats, feats.new_zeros(n, cell.shape[1]),
                              onehot], 1)
        cell_rows = torch.cat([cell.new_ones(m, 1), cell.new_zeros(m, feats.shape[1]), cell,
                               self._onehot(cells.fields["cell_subsystem"])], 1)
        tokens, cu, hit_slots, cell_slots = combine(hit_rows, batch.cu_seqlens, cell_rows,
                                                    cells.cu_seqlens)
        perm = torch.empty(n + m, dtype=torch.int64)
        perm[hit_slots] = torch.arange(n)
        perm[cell_slots] = torch.arange(m) + n
        return [tokens], perm, cu


def build_backbone(mode: str, run: Path | None, seed: int) -> FoundationModel:
    """The backbone for ``mode``: pretrained from ``run``'s latest checkpoint, or a random
    initialisation (seeded) of the run's architecture (with the run's token embedder for
    ``adapter_only``), or ``RawHitFeatures`` for ``raw``."""
    if mode not in MODES:
        raise NpfmError(f"mode {mode!r}", "unknown training mode", f"use {', '.join(MODES)}")
    if mode == "raw":
        return RawHitFeatures()  # type: ignore[return-value]
    if run is None:
        raise NpfmError("--run", "missing", "pass the pretraining run whose architecture "
                        "(and, except for scratch/adapter_only, weights) to use")
    model, _ = load_model(run)
    config = dataclasses.replace(model.config, max_hits=NO_CUT)
    if mode not in PRETRAINED_MODES:
        pretrained = model
        torch.manual_seed(seed)
        config = dataclasses.replace(config, seed=seed)
        model = FoundationModel(config)
        if mode == "adapter_only":
            model.tokenizer.load_state_dict(pretrained.tokenizer.state_dict())
            if model.object_tokenizer is not None and pretrained.object_tokenizer is not None:
                model.object_tokenizer.load_state_dict(pretrained.object_tokenizer.state_dict())
            for name in ("cell_tokenizer", "token_type"):  # the cell embedder too
                mine, theirs = getattr(model, name), getattr(pretrained, name)
                if mine is not None and theirs is not None:
                    mine.load_state_dict(theirs.state_dict())
    model.config = config
    model.requires_grad_(mode in ("full", "scratch"))
    if mode == "lora":
        apply_lora(model.backbone)
    model.train(mode in TRAINED_BACKBONE)
    return model


def hit_layers(model: FoundationModel | RawHitFeatures, batch: PackedBatch
               ) -> list[torch.Tensor]:
    """Per-layer outputs (N, d) for every hit of ``batch``, in original hit order."""
    outputs, perm, _ = model.layers(batch)
    if len(perm) != int(batch.cu_seqlens[-1]):
        raise RuntimeError("hits were cut by max_hits; build the backbone with build_backbone")
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm), device=perm.device)
    return [layer[inverse] for layer in outputs]


def token_layers(model: FoundationModel | RawHitFeatures, batch: PackedBatch,
                 cells: PackedBatch) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-layer outputs for every hit and cell of ``batch`` and ``cells`` (the same
    events): per event its hits, then its cells, in original order; and cu_seqlens."""
    outputs, perm, _ = model.layers(batch, cells=cells)
    n = int(batch.cu_seqlens[-1])
    if len(perm) != n + int(cells.cu_seqlens[-1]):
        raise RuntimeError("hits or cells were cut by max_hits, or the model has no cell "
                           "tokens; build the backbone with build_backbone from a run "
                           "pretrained with cells: true")
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm), device=perm.device)
    out, cu = [], batch.cu_seqlens
    for layer in outputs:
        rows = layer[inverse]
        tokens, cu, _, _ = combine(rows[:n], batch.cu_seqlens, rows[n:], cells.cu_seqlens)
        out.append(tokens)
    return out, cu


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of ``model`` that require gradients."""
    return [p for p in model.parameters() if p.requires_grad]

