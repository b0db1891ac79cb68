"""Mamba-2 state-space duality (SSD) scan in pure PyTorch.

The chunked algorithm follows Dao & Gu, "Transformers are SSMs: Generalized Models and Efficient
Algorithms Through Structured State Space Duality" (arXiv 2405.21060), Sec. 6 and its listing
``ssd_minimal``: a quadratic (attention-like) form inside each chunk plus a linear recurrence
that passes states between chunks. ``ssd_recurrent`` is the step-by-step recurrence it equals.

Shapes (b batch, l length, h heads, p headdim, g groups, n d_state):
    x (b, l, h, p); dt (b, l, h), already softplus-ed; A (h,), negative;
    B, C (b, l, g, n) with h % g == 0 (head i reads group i // (h // g));
    state (b, h, p, n).
All arithmetic is in float32 (float64 inputs stay float64); y is cast back to x's dtype and the
final state is returned in the compute dtype.

Packed variable-length sequences: ``cu_seqlens`` (E+1,) holds the offsets of E events packed end
to end along l (the same packing for every batch row). The state is reset at each event start
after position 0 by setting the log decay dt*A there to -inf, so every segment sum crossing a
boundary is -inf and its decay exp(.) is exactly 0. Segment sums are built from cumsums without
subtraction (masked cumsum for the quadratic form, reverse cumsum for decays to a chunk end), so
-inf never meets -inf and neither the forward nor the backward pass produces NaN. An
``initial_state`` feeds the first event only; ``final_state`` is that of the last event.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def seq_index(cu_seqlens: Tensor, length: int) -> Tensor:
    """Event index of each packed position: (length,) int64 from offsets (E+1,)."""
    positions = torch.arange(length, device=cu_seqlens.device)
    return torch.searchsorted(cu_seqlens[1:].to(torch.int64), positions, right=True)


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def _expand_groups(t: Tensor, heads: int) -> Tensor:
    """(b, l, g, n) -> (b, l, h, n): each group serves h // g consecutive heads."""
    groups = t.shape[2]
    if heads % groups:
        raise ValueError(f"heads ({heads}) must be a multiple of groups ({groups})")
    return t.repeat_interleave(heads // groups, dim=2)


def _log_decay(dt: Tensor, A: Tensor, cu_seqlens: Tensor | None) -> Tensor:
    """dt*A (b, l, h), set to -inf at event starts after position 0 (state reset)."""
    a = dt * A
    if cu_seqlens is None:
        return a
    length = a.shape[1]
    starts = cu_seqlens[1:-1].to(device=a.device, dtype=torch.int64)
    starts = starts[(starts > 0) & (starts < length)]
    reset = torch.zeros(length, dtype=torch.bool, device=a.device)
    reset[starts] = True
    return a.masked_fill(reset[None, :, None], float("-inf"))


def _prepare(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, cu_seqlens: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cast to the compute dtype; return x*dt, log decay a, B and C expanded to heads."""
    dtype = _compute_dtype(x)
    heads = x.shape[2]
    dt = dt.to(dtype)
    a = _log_decay(dt, A.to(dtype), cu_seqlens)
    xdt = x.to(dtype) * dt[..., None]
    return xdt, a, _expand_groups(B.to(dtype), heads), _expand_groups(C.to(dtype), heads)


def _segsum(a: Tensor) -> Tensor:
    """(..., T) -> (..., T, T): out[i, j] = sum_{k=j+1..i} a_k for i >= j, else -inf.

    Masked cumsum (no differences of cumsums), as in arXiv 2405.21060's ``segsum``.
    """
    t = a.shape[-1]
    rows = a[..., None].expand(*a.shape, t)
    strict = torch.tril(torch.ones(t, t, dtype=torch.bool, device=a.device), diagonal=-1)
    out = rows.masked_fill(~strict, 0.0).cumsum(dim=-2)
    lower = torch.tril(torch.ones(t, t, dtype=torch.bool, device=a.device))
    return out.masked_fill(~lower, float("-inf"))


def _reverse_exclusive_cumsum(a: Tensor) -> Tensor:
    """out[j] = sum_{k=j+1..T-1} a_k along the last axis, without subtraction."""
    inclusive = a.flip(-1).cumsum(-1).flip(-1)
    return F.pad(inclusive[..., 1:], (0, 1))


def ssd_chunked(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int = 64,
    initial_state: Tensor | None = None,
    cu_seqlens: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Chunked SSD scan (arXiv 2405.21060, Sec. 6). Returns y (b, l, h, p), state (b, h, p, n).

    Any l: inputs are padded with dt = 0 (decay 1, no input) to a multiple of chunk_size and y
    is trimmed, so the final state is unaffected by the padding.
    """
    b, length, h, p = x.shape
    xdt, a, B, C = _prepare(x, dt, A, B, C, cu_seqlens)
    n = B.shape[-1]
    pad = (-length) % chunk_size
    if pad:
        xdt, B, C = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (xdt, B, C))
        a = F.pad(a, (0, 0, 0, pad))
    c, q = (length + pad) // chunk_size, chunk_size
    xdt = xdt.reshape(b, c, q, h, p)
    B = B.reshape(b, c, q, h, n)
    C = C.reshape(b, c, q, h, n)
    a = a.reshape(b, c, q, h).permute(0, 3, 1, 2)  # (b, h, c, q)
    a_cum = a.cumsum(dim=-1)

    # 1. Intra-chunk outputs (diagonal blocks): y = (C B^T * L) x with L = exp(segsum(a)).
    scores = torch.einsum("bclhn,bcshn->bhcls", C, B) * torch.exp(_segsum(a))
    y_diag = torch.einsum("bhcls,bcshp->bclhp", scores, xdt)

    # 2. State at each chunk's end from the chunk's own inputs.
    decay_to_end = torch.exp(_reverse_exclusive_cumsum(a))  # (b, h, c, q)
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", B, decay_to_end, xdt)

    # 3. Inter-chunk recurrence on the chunk-boundary states (quadratic in the chunk count).
    if initial_state is None:
        initial_state = torch.zeros(b, h, p, n, dtype=xdt.dtype, device=xdt.device)
    states = torch.cat([initial_state.to(xdt.dtype)[:, None], states], dim=1)
    decay_chunk = torch.exp(_segsum(F.pad(a_cum[..., -1], (1, 0))))  # (b, h, c+1, c+1)
    states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final_state = states[:, :-1], states[:, -1]

    # 4. Contribution of the state entering each chunk to its outputs.
    y_off = torch.einsum("bclhn,bchpn,bhcl->bclhp", C, states, torch.exp(a_cum))
    y = (y_diag + y_off).reshape(b, c * q, h, p)[:, :length]
    return y.to(x.dtype), final_state


def ssd_recurrent(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int | None = None,
    initial_state: Tensor | None = None,
    cu_seqlens: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Reference recurrence h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T, y_t = h_t C_t.

    Same signature and returns as :func:`ssd_chunked`; ``chunk_size`` is accepted so the two
    are interchangeable and is not used. O(l) sequential steps: slow, for testing.
    """
    b, length, h, p = x.shape
    xdt, a, B, C = _prepare(x, dt, A, B, C, cu_seqlens)
    decay = torch.exp(a)  # (b, l, h); exactly 0 at event starts in packed mode
    state = torch.zeros(b, h, p, B.shape[-1], dtype=xdt.dtype, device=xdt.device)
    if initial_state is not None:
        state = initial_state.to(xdt.dtype)
    ys = []
    for t in range(length):
        state = decay[:, t, :, None, None] * state + xdt[:, t, :, :, None] * B[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    y = torch.stack(ys, dim=1) if ys else xdt.new_zeros(b, 0, h, p)
    return y.to(x.dtype), state
