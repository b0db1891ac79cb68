"""Patch attention backbone over serialised, packed events (in the style of PTv3 / HEPT).

Tokens arrive already serialised (:mod:`npfm.model.serialize`), so consecutive tokens are
spatial neighbours. Each event (packed, ``cu_seqlens``) is cut into patches of ``patch_size``
consecutive tokens and every block runs full multi-head attention inside each patch
(``scaled_dot_product_attention`` with a key-padding mask), costing O(N * patch_size).
Odd blocks shift the patch boundaries by patch_size / 2 so that information crosses patches.
Patches never span two events: each event is padded on its own to a multiple of patch_size
with masked slots. An event of at most patch_size tokens is never shifted, so it stays one
patch (full attention over the event) in every block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class PatchLayout:
    """Where each packed token sits in the padded patch buffer.

    slot: (T,) int64 buffer row of each token; valid: (n_patches, patch_size) bool, True on
    real tokens; n_slots = n_patches * patch_size.
    """

    slot: Tensor
    valid: Tensor

    @property
    def n_slots(self) -> int:
        return self.valid.numel()


def patch_layout(cu_seqlens: Tensor, patch_size: int, shift: int) -> PatchLayout:
    """Pad every event of ``cu_seqlens`` (E+1,) to whole patches, offset by ``shift`` slots.

    Event e of length n_e > patch_size starts at slot ``shift`` of its own segment of
    ceil((n_e + shift) / patch_size) patches; shorter events are not shifted; empty events
    take no slots. Every patch holds at least one real token.
    """
    cu = cu_seqlens.to(torch.int64)
    lengths = cu[1:] - cu[:-1]
    shifts = torch.where(lengths > patch_size, shift, 0)
    n_patches = (lengths + shifts + patch_size - 1) // patch_size
    sizes = n_patches * patch_size
    starts = torch.cumsum(sizes, 0) - sizes
    event = torch.repeat_interleave(torch.arange(len(lengths), device=cu.device), lengths)
    pos = torch.arange(int(cu[-1]), device=cu.device) - cu[event]
    slot = starts[event] + shifts[event] + pos
    valid = torch.zeros(int(sizes.sum()), dtype=torch.bool, device=cu.device)
    valid[slot] = True
    return PatchLayout(slot, valid.view(-1, patch_size))


class PatchAttention(nn.Module):
    """Multi-head self-attention inside patches: (T, d) -> (T, d) given a :class:`PatchLayout`."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) not divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, layout: PatchLayout) -> Tensor:
        d = x.shape[-1]
        n_patches, patch_size = layout.valid.shape
        qkv = self.qkv(x)
        buf = qkv.new_zeros(layout.n_slots, 3 * d).index_copy(0, layout.slot, qkv)
        q, k, v = buf.view(n_patches, patch_size, 3, self.n_heads, d // self.n_heads).unbind(2)
        mask = layout.valid[:, None, None, :]  # (patches, 1, 1, keys)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
        )
        out = out.transpose(1, 2).reshape(layout.n_slots, d)[layout.slot]
        return self.proj(out)


class AttentionBlock(nn.Module):
    """Pre-norm block: h + attn(RMSNorm(h)), then h + MLP(RMSNorm(h)); (T, d) -> (T, d)."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(d_model, eps=1e-5)
        self.attn = PatchAttention(d_model, n_heads)
        self.norm2 = nn.RMSNorm(d_model, eps=1e-5)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
            nn.Linear(mlp_ratio * d_model, d_model),
        )

    def forward(self, h: Tensor, layout: PatchLayout) -> Tensor:
        h = h + self.attn(self.norm1(h), layout)
        return h + self.mlp(self.norm2(h))


class PatchAttentionBackbone(nn.Module):
    """Stack of pre-norm patch-attention blocks over packed tokens; odd blocks shift patches.

    forward(tokens (T, d_model), cu_seqlens (E+1,) or None) -> list of n_layers tensors
    (T, d_model), the residual stream after each block (no final norm), as Mamba2Backbone.
    """

    def __init__(
        self, d_model: int, n_layers: int, n_heads: int, patch_size: int = 128, mlp_ratio: int = 4
    ) -> None:
        super().__init__()
        if patch_size < 2 or patch_size % 2:
            raise ValueError(f"patch_size must be even and >= 2, got {patch_size}")
        self.patch_size = patch_size
        self.layers = nn.ModuleList(
            AttentionBlock(d_model, n_heads, mlp_ratio) for _ in range(n_layers)
        )

    def forward(self, tokens: Tensor, cu_seqlens: Tensor | None = None) -> list[Tensor]:
        if cu_seqlens is None:
            cu_seqlens = torch.tensor([0, tokens.shape[0]], device=tokens.device)
        layouts = [patch_layout(cu_seqlens.to(tokens.device), self.patch_size, shift)
                   for shift in (0, self.patch_size // 2)]
        h, outputs = tokens, []
        for i, layer in enumerate(self.layers):
            h = layer(h, layouts[i % 2])
            outputs.append(h)
        return outputs


@dataclass(frozen=True)
class AttentionConfig:
    """Attention backbone hyper-parameters (12 layers, mlp_ratio 2: ~1.3x the Mamba-2 m* size)."""

    width: int
    n_layers: int = 12
    n_heads: int = 4
    patch_size: int = 128
    mlp_ratio: int = 2


ATTENTION_FAMILY: dict[str, AttentionConfig] = {
    "tiny": AttentionConfig(width=32, n_layers=2, n_heads=2, patch_size=16),
    "a1": AttentionConfig(width=64),
    "a2": AttentionConfig(width=128),
    "a3": AttentionConfig(width=256, n_heads=8),
    "a4": AttentionConfig(width=512, n_heads=16),
}


def build_attention(name: str, device: torch.device | str | None = None) -> PatchAttentionBackbone:
    """Attention backbone for an :data:`ATTENTION_FAMILY` member by name (KeyError if unknown)."""
    cfg = ATTENTION_FAMILY[name]
    with torch.device(device or "cpu"):
        return PatchAttentionBackbone(
            cfg.width, cfg.n_layers, cfg.n_heads, patch_size=cfg.patch_size,
            mlp_ratio=cfg.mlp_ratio,
        )
