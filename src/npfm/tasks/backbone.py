"""The backbone under a task head, in one of five training modes.

- ``frozen``: the pretrained backbone, frozen (the foundation-model adapter setting).
- ``adapter_only``: the same architecture randomly initialised, frozen: what the head
  alone can do without pretraining.
- ``lora``: the pretrained backbone frozen, with trainable low-rank updates
  (Hu et al., arXiv:2106.09685) on its linear layers.
- ``full``: the pretrained backbone, fine-tuned end to end.
- ``scratch``: the architecture randomly initialised and trained end to end.

``hit_layers(model, batch)`` gives the per-layer outputs in the events' original hit
order; tasks set ``max_hits`` high so that no hit is cut.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
from torch import nn

from npfm.events.errors import NpfmError
from npfm.events.loader import PackedBatch
from npfm.model.foundation import FoundationModel
from npfm.train.embed import load_model

MODES = ("frozen", "adapter_only", "lora", "full", "scratch")
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


def build_backbone(mode: str, run: Path | None, seed: int) -> FoundationModel:
    """The backbone for ``mode``: pretrained from ``run``'s latest checkpoint, or a random
    initialisation (seeded) of the run's architecture."""
    if mode not in MODES:
        raise NpfmError(f"mode {mode!r}", "unknown training mode", f"use {', '.join(MODES)}")
    if run is None:
        raise NpfmError("--run", "missing", "pass the pretraining run whose architecture "
                        "(and, except for scratch/adapter_only, weights) to use")
    model, _ = load_model(run)
    config = dataclasses.replace(model.config, max_hits=NO_CUT)
    if mode not in PRETRAINED_MODES:
        torch.manual_seed(seed)
        config = dataclasses.replace(config, seed=seed)
        model = FoundationModel(config)
    model.config = config
    model.requires_grad_(mode in ("full", "scratch"))
    if mode == "lora":
        apply_lora(model.backbone)
    model.train(mode in TRAINED_BACKBONE)
    return model


def hit_layers(model: FoundationModel, batch: PackedBatch) -> list[torch.Tensor]:
    """Per-layer outputs (N, d) for every hit of ``batch``, in original hit order."""
    outputs, perm, _ = model.layers(batch)
    if len(perm) != int(batch.cu_seqlens[-1]):
        raise RuntimeError("hits were cut by max_hits; build the backbone with build_backbone")
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm), device=perm.device)
    return [layer[inverse] for layer in outputs]


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of ``model`` that require gradients."""
    return [p for p in model.parameters() if p.requires_grad]

