"""The foundation model: tokeniser -> serialisation -> backbone -> pretraining objective.

``FoundationModel(config)(batch, step)`` returns (loss, metrics) for a ``PackedBatch`` of
hits whose ``event_fields`` carry ``geometry_id`` and ``data_level``. Events are
serialised by ``config.order`` and cut to their first ``config.max_hits`` hits in that
order. Randomness (masks) is drawn from (seed, step), so a resumed run is identical.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from npfm.events.loader import PackedBatch
from npfm.model.family import FAMILY, build_backbone
from npfm.model.objectives import BatchInfo, KNNNObjective, MaskedHitObjective
from npfm.model.serialize import ORDERS
from npfm.model.tokenize import HIT_FEATURES, HitTokenizer, hit_features


def _backbone(kind: str, size: str) -> tuple[nn.Module, int]:
    if kind == "mamba2":
        return build_backbone(size), FAMILY[size].width
    if kind == "attention":
        from npfm.model.attention import ATTENTION_FAMILY, build_attention

        return build_attention(size), ATTENTION_FAMILY[size].width
    raise ValueError(f"unknown backbone {kind!r}; use mamba2 or attention")


class FoundationModel(nn.Module):
    """Hit tokens through a Mamba-2 or attention backbone, trained by kNNN or masking."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.backbone, width = _backbone(config.backbone, config.size)
        self.tokenizer = HitTokenizer(width, seed=config.seed)
        self.norm = nn.LayerNorm(width)
        self.order = ORDERS[config.order]
        self.objective: KNNNObjective | MaskedHitObjective
        if config.objective == "masked":
            self.objective = MaskedHitObjective(width, len(HIT_FEATURES))
        else:
            self.objective = KNNNObjective(width, config.k,
                                           leak_free=config.objective == "knnn_leakfree")

    def serialise(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Permutation into serialised order, cut to ``max_hits`` per event, and the new
        ``cu_seqlens``."""
        f, cu = batch.fields, batch.cu_seqlens
        perm = self.order(f["hit_x"], f["hit_y"], f["hit_z"], cu)
        counts = (cu[1:] - cu[:-1]).clamp_max(self.config.max_hits)
        event = torch.repeat_interleave(torch.arange(len(counts), device=cu.device),
                                        cu[1:] - cu[:-1])
        rank = torch.arange(len(perm), device=cu.device) - cu[:-1][event]
        keep = perm[rank < counts[event]]  # perm keeps each event inside its segment
        new_cu = torch.cat([cu.new_zeros(1), torch.cumsum(counts, 0)])
        return keep, new_cu

    def inputs(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                  torch.Tensor]:
        """Serialised tokens (N', d), the permutation, cu_seqlens and features (N', 6)."""
        geometry = batch.event_fields["geometry_id"]
        feats = hit_features(batch.fields, batch.cu_seqlens, geometry)
        perm, cu = self.serialise(batch)
        tokens = self.tokenizer(batch, geometry, batch.event_fields["data_level"])[perm]
        return tokens, perm, cu, feats[perm]

    def layers(self, batch: PackedBatch) -> tuple[list[torch.Tensor], torch.Tensor,
                                                  torch.Tensor]:
        """Per-layer backbone outputs (serialised order), the permutation, cu_seqlens."""
        tokens, perm, cu, _ = self.inputs(batch)
        return self.backbone(tokens, cu), perm, cu

    def forward(self, batch: PackedBatch, step: int) -> tuple[torch.Tensor,
                                                             dict[str, torch.Tensor]]:
        tokens, _, cu, feats = self.inputs(batch)
        info = BatchInfo(pos=feats[:, :3], r=feats[:, 2], cu_seqlens=cu, features=feats)
        if isinstance(self.objective, MaskedHitObjective):
            generator = torch.Generator(device=tokens.device)
            generator.manual_seed(self.config.seed * 1_000_003 + step)
            info.mask = self.objective.choose_mask(len(tokens), generator)
            tokens = self.objective.apply_mask(tokens, info.mask)
        return self.objective(self.norm(self.backbone(tokens, cu)[-1]), info)
