"""Model family m1..m6 of FM4NPP (arXiv 2508.14087) plus ``tiny`` for CPU tests.

FM4NPP's backbone: 12 pre-norm Mamba-2 blocks, d_conv 4, expand 2, headdim 64,
d_state = width / 16; widths 64..1536 give 0.34M..188M parameters (FM4NPP_PARAMS).
Counts here are of the backbone blocks only (norms, in/out projections, conv, dt_bias, A_log, D);
the token embedding and any head are excluded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from npfm.model.mamba2 import Mamba2Backbone


@dataclass(frozen=True)
class ModelConfig:
    """Backbone hyper-parameters; d_state defaults to width / 16."""

    width: int
    n_layers: int = 12
    headdim: int = 64
    expand: int = 2
    d_conv: int = 4
    chunk_size: int = 64
    d_state: int = 0

    def __post_init__(self) -> None:
        if self.d_state == 0:
            object.__setattr__(self, "d_state", max(1, self.width // 16))


FAMILY: dict[str, ModelConfig] = {
    "tiny": ModelConfig(width=32, n_layers=2, headdim=16, chunk_size=16),
    "m1": ModelConfig(width=64),
    "m2": ModelConfig(width=128),
    "m3": ModelConfig(width=256),
    "m4": ModelConfig(width=512),
    "m5": ModelConfig(width=1024),
    "m6": ModelConfig(width=1536),
}

# Parameter counts reported by FM4NPP (arXiv 2508.14087).
FM4NPP_PARAMS: dict[str, float] = {
    "m1": 0.34e6, "m2": 1.3e6, "m3": 5.3e6, "m4": 21e6, "m5": 84e6, "m6": 188e6,
}


def build_backbone(name: str, device: torch.device | str | None = None) -> Mamba2Backbone:
    """Backbone for a family member by name (KeyError if unknown)."""
    cfg = FAMILY[name]
    with torch.device(device or "cpu"):
        return Mamba2Backbone(
            cfg.width, cfg.n_layers, cfg.d_state, headdim=cfg.headdim, expand=cfg.expand,
            d_conv=cfg.d_conv, chunk_size=cfg.chunk_size,
        )


def parameter_count(name: str) -> int:
    """Backbone parameters of a family member, counted on the meta device (no allocation)."""
    model = build_backbone(name, device="meta")
    return sum(p.numel() for p in model.parameters())


def parameter_table() -> dict[str, tuple[int, float | None]]:
    """name -> (our count, FM4NPP's reported count or None)."""
    return {name: (parameter_count(name), FM4NPP_PARAMS.get(name)) for name in FAMILY}
