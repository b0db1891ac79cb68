"""Patch attention backbone: shapes, packing, padding, reference attention, gradients."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor

from npfm.model.attention import (
    ATTENTION_FAMILY,
    AttentionBlock,
    PatchAttentionBackbone,
    build_attention,
    patch_layout,
)

F64 = torch.float64


def _model(patch_size: int, n_layers: int = 3) -> PatchAttentionBackbone:
    torch.manual_seed(0)
    return PatchAttentionBackbone(16, n_layers, 2, patch_size=patch_size, mlp_ratio=2).to(F64)


def _tokens(n: int, d: int = 16, seed: int = 1) -> Tensor:
    return torch.randn(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed))


def _reference_attention(block: AttentionBlock, x: Tensor, bounds: list[int]) -> Tensor:
    """Plain softmax attention of one event (n, d), full inside each [bounds[i], bounds[i+1])."""
    heads = block.attn.n_heads
    n, d = x.shape
    q, k, v = block.attn.qkv(x).view(n, 3, heads, d // heads).unbind(1)
    out = torch.empty(n, heads, d // heads, dtype=x.dtype)
    for lo, hi in itertools.pairwise(bounds):
        scores = torch.einsum("qhc,khc->hqk", q[lo:hi], k[lo:hi]) / (d // heads) ** 0.5
        out[lo:hi] = torch.einsum("hqk,khc->qhc", scores.softmax(-1), v[lo:hi])
    return block.attn.proj(out.reshape(n, d))


def _reference(model: PatchAttentionBackbone, x: Tensor) -> list[Tensor]:
    """Per-layer outputs of one unpadded event, patches cut by explicit slicing."""
    p, n = model.patch_size, x.shape[0]
    outputs = []
    for i, block in enumerate(model.layers):
        assert isinstance(block, AttentionBlock)
        shift = p // 2 if i % 2 and n > p else 0
        bounds = sorted({0, n, *range(p - shift, n, p)})
        x = x + _reference_attention(block, block.norm1(x), bounds)
        x = x + block.mlp(block.norm2(x))
        outputs.append(x)
    return outputs


def test_output_shapes_and_family() -> None:
    model = build_attention("tiny")
    tokens = torch.randn(50, ATTENTION_FAMILY["tiny"].width)
    outs = model(tokens, torch.tensor([0, 20, 20, 50]))
    assert len(outs) == ATTENTION_FAMILY["tiny"].n_layers
    assert all(o.shape == tokens.shape for o in outs)
    assert set(ATTENTION_FAMILY) >= {"tiny", "a1", "a2"}


def test_layout_patches_never_span_events_and_shift() -> None:
    layout = patch_layout(torch.tensor([0, 5, 5, 30]), patch_size=8, shift=4)
    # event 0 (5 <= 8 tokens) unshifted: 1 patch; empty event: none; event 2 (25): 4 patches.
    assert layout.valid.shape == (5, 8)
    assert layout.slot[:5].tolist() == [0, 1, 2, 3, 4]
    assert layout.slot[5:].tolist() == list(range(12, 37))
    assert layout.valid.any(1).all()


@pytest.mark.parametrize("patch_size", [4, 8, 64])
def test_packed_equals_separate(patch_size: int) -> None:
    model = _model(patch_size)
    lengths = [13, 1, 0, 30, 8]
    tokens = _tokens(sum(lengths))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    packed = model(tokens, cu)
    for e in range(len(lengths)):
        lo, hi = int(cu[e]), int(cu[e + 1])
        alone = model(tokens[lo:hi])
        for a, b in zip(packed, alone, strict=True):
            torch.testing.assert_close(a[lo:hi], b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("n", "patch_size"), [(37, 8), (40, 8), (9, 8), (5, 2)])
def test_matches_unpadded_reference_patches(n: int, patch_size: int) -> None:
    model = _model(patch_size, n_layers=4)
    x = _tokens(n)
    for got, want in zip(model(x), _reference(model, x), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [1, 17, 32])
def test_single_patch_equals_full_attention(n: int) -> None:
    model = _model(32)
    x = _tokens(n)
    for got, want in zip(model(x), _reference(model, x), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # Cross-check: _reference with one patch is full attention over the event.
    block = model.layers[0]
    assert isinstance(block, AttentionBlock)
    mha = torch.nn.MultiheadAttention(16, 2, batch_first=True, dtype=F64)
    mha.load_state_dict({
        "in_proj_weight": block.attn.qkv.weight, "in_proj_bias": block.attn.qkv.bias,
        "out_proj.weight": block.attn.proj.weight, "out_proj.bias": block.attn.proj.bias,
    })
    y = block.norm1(x)[None]
    torch.testing.assert_close(
        _reference_attention(block, y[0], [0, n]), mha(y, y, y, need_weights=False)[0][0]
    )


def test_shift_carries_information_across_patches() -> None:
    x = _tokens(32).requires_grad_()
    for n_layers, crosses in [(1, False), (2, True)]:
        out = _model(8, n_layers=n_layers)(x)[-1]
        (grad,) = torch.autograd.grad(out[7].sum(), x)  # shifted patch 2 holds tokens 4..11
        assert bool(grad[8:].abs().sum() > 0) == crosses


def test_gradients_finite() -> None:
    model = build_attention("tiny")
    tokens = torch.randn(70, 32, requires_grad=True)
    outs = model(tokens, torch.tensor([0, 3, 3, 40, 70]))
    torch.stack([o.square().mean() for o in outs]).sum().backward()
    grads = [tokens.grad, *(p.grad for p in model.parameters())]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
