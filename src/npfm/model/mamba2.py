"""Mamba-2 block and pre-norm backbone over packed events (Dao & Gu, arXiv 2405.21060).

Layout and initialisation follow the reference ``Mamba2`` mixer of the mamba_ssm package:
in_proj -> (z, xBC, dt); depthwise causal conv1d over xBC; SiLU; SSD scan; D skip;
gated RMSNorm with z; out_proj. Packed mode: tokens of several events are concatenated along the
sequence and ``cu_seqlens`` (E+1 offsets) marks the events; neither the convolution nor the scan
carries information across an event boundary.

Fast path: if mamba_ssm's Triton kernel ``mamba_chunk_scan_combined`` imports and the tensors are
on CUDA, the scan uses it (with ``seq_idx`` for packed events); otherwise :func:`ssd_chunked`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from npfm.model.ssd import seq_index, ssd_chunked


def _load_fast_scan() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("mamba_ssm.ops.triton.ssd_combined")
    except (ImportError, OSError):
        return None
    return getattr(module, "mamba_chunk_scan_combined", None)


FAST_SCAN = _load_fast_scan()


class GatedRMSNorm(nn.Module):
    """RMSNorm(y * SiLU(z)) * weight over the last axis (mamba_ssm's norm_before_gate=False)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: Tensor, z: Tensor) -> Tensor:
        y = y * F.silu(z)
        return y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mamba2Mixer(nn.Module):
    """One Mamba-2 mixer: (b, l, d_model) -> (b, l, d_model); ngroups = 1."""

    def __init__(
        self,
        d_model: int,
        d_state: int,
        headdim: int = 64,
        expand: int = 2,
        d_conv: int = 4,
        chunk_size: int = 64,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
    ) -> None:
        super().__init__()
        self.d_inner = expand * d_model
        if self.d_inner % headdim:
            raise ValueError(f"expand*d_model ({self.d_inner}) not divisible by headdim {headdim}")
        self.d_state, self.headdim, self.chunk_size = d_state, headdim, chunk_size
        self.nheads = self.d_inner // headdim
        self.use_fast_path = True
        conv_dim = self.d_inner + 2 * d_state
        self.in_proj = nn.Linear(d_model, self.d_inner + conv_dim + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1)
        dt = torch.exp(
            torch.rand(self.nheads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        ).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(1.0, 16.0)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        for param in (self.dt_bias, self.A_log, self.D):
            param._no_weight_decay = True  # type: ignore[attr-defined]
        self.norm = GatedRMSNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def causal_conv(self, xbc: Tensor, pos: Tensor) -> Tensor:
        """Depthwise causal conv of (b, l, c); tap t-j is dropped where pos[t] < j (new event).

        ``pos`` (l,) is each token's position inside its event (arange(l) when not packed).
        """
        weight = self.conv1d.weight[:, 0, :]  # (c, k)
        bias = self.conv1d.bias
        assert bias is not None
        k, length = weight.shape[-1], xbc.shape[1]
        out = xbc * weight[:, k - 1] + bias
        for j in range(1, k):
            shifted = F.pad(xbc, (0, 0, j, 0))[:, :length]
            out = out + shifted * weight[:, k - 1 - j] * (pos >= j)[None, :, None].to(xbc.dtype)
        return out

    def scan(self, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
             cu_seqlens: Tensor | None) -> Tensor:
        """SSD scan, fast Triton kernel when available on CUDA, else pure PyTorch."""
        if FAST_SCAN is not None and x.is_cuda and self.use_fast_path:
            seq_idx = None
            if cu_seqlens is not None:
                seq_idx = seq_index(cu_seqlens, x.shape[1]).to(torch.int32)
                seq_idx = seq_idx[None].expand(x.shape[0], -1).contiguous()
            return FAST_SCAN(x, dt, A, B, C, chunk_size=self.chunk_size, seq_idx=seq_idx)
        return ssd_chunked(x, dt, A, B, C, self.chunk_size, cu_seqlens=cu_seqlens)[0]

    def forward(self, u: Tensor, cu_seqlens: Tensor | None = None) -> Tensor:
        b, length, _ = u.shape
        z, xbc, dt = self.in_proj(u).split(
            [self.d_inner, self.d_inner + 2 * self.d_state, self.nheads], dim=-1
        )
        if cu_seqlens is None:
            pos = torch.arange(length, device=u.device)
        else:
            cu = cu_seqlens.to(device=u.device, dtype=torch.int64)
            pos = torch.arange(length, device=u.device) - cu[seq_index(cu, length)]
        xbc = F.silu(self.causal_conv(xbc, pos))
        x, B, C = xbc.split([self.d_inner, self.d_state, self.d_state], dim=-1)
        x = x.reshape(b, length, self.nheads, self.headdim)
        dt = F.softplus(dt + self.dt_bias)
        A = -torch.exp(self.A_log.float())
        y = self.scan(x, dt, A, B[:, :, None], C[:, :, None], cu_seqlens)
        y = y + x * self.D[:, None].to(x.dtype)
        y = self.norm(y.reshape(b, length, self.d_inner), z)
        return self.out_proj(y)


class Mamba2Block(nn.Module):
    """Pre-norm residual block: u + mixer(RMSNorm(u))."""

    def __init__(self, d_model: int, **mixer_kwargs: Any) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=1e-5)
        self.mixer = Mamba2Mixer(d_model, **mixer_kwargs)

    def forward(self, u: Tensor, cu_seqlens: Tensor | None = None) -> Tensor:
        return u + self.mixer(self.norm(u), cu_seqlens)


class Mamba2Backbone(nn.Module):
    """Stack of pre-norm Mamba-2 blocks over packed tokens.

    forward(tokens (T, d_model), cu_seqlens (E+1,) or None) -> list of n_layers tensors
    (T, d_model), the residual stream after each block (no final norm; adapters mix layers).
    """

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        d_state: int,
        headdim: int = 64,
        expand: int = 2,
        d_conv: int = 4,
        chunk_size: int = 64,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            Mamba2Block(d_model, d_state=d_state, headdim=headdim, expand=expand,
                        d_conv=d_conv, chunk_size=chunk_size)
            for _ in range(n_layers)
        )

    def set_fast_path(self, enabled: bool) -> None:
        """Allow (default) or forbid the Triton scan kernel."""
        for module in self.modules():
            if isinstance(module, Mamba2Mixer):
                module.use_fast_path = enabled

    def forward(self, tokens: Tensor, cu_seqlens: Tensor | None = None) -> list[Tensor]:
        h = tokens[None]
        outputs = []
        for layer in self.layers:
            h = layer(h, cu_seqlens)
            outputs.append(h[0])
        return outputs
