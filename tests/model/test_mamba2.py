"""Mamba-2 SSD scan, block, packed backbone and model family."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from npfm.model.family import FAMILY, FM4NPP_PARAMS, build_backbone, parameter_count
from npfm.model.mamba2 import FAST_SCAN, Mamba2Backbone, Mamba2Mixer
from npfm.model.ssd import ssd_chunked, ssd_recurrent

F64 = torch.float64


def _inputs(
    b: int, length: int, h: int, p: int, g: int, n: int, seed: int = 0
) -> tuple[Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, h, p, dtype=F64, generator=gen)
    dt = torch.rand(b, length, h, dtype=F64, generator=gen) * 0.5 + 0.01
    A = -(torch.rand(h, dtype=F64, generator=gen) * 3 + 0.1)
    B = torch.randn(b, length, g, n, dtype=F64, generator=gen)
    C = torch.randn(b, length, g, n, dtype=F64, generator=gen)
    return tuple(t.requires_grad_() for t in (x, dt, A, B, C))


def _outputs_and_grads(
    scan: Callable[..., tuple[Tensor, Tensor]], inputs: tuple[Tensor, ...], chunk_size: int,
    **kw: Any,
) -> list[Tensor]:
    y, state = scan(*inputs[:5], chunk_size, *inputs[5:], **kw)  # inputs[5]: initial state
    gen = torch.Generator().manual_seed(1)
    loss = (y * torch.randn(y.shape, dtype=F64, generator=gen)).sum() + (
        state * torch.randn(state.shape, dtype=F64, generator=gen)
    ).sum()
    return [y, state, *torch.autograd.grad(loss, inputs)]


@pytest.mark.parametrize(
    ("length", "chunk_size", "groups"),
    [(1, 16, 1), (37, 8, 1), (64, 16, 2), (100, 32, 1), (130, 64, 4)],
)
def test_chunked_matches_recurrent_outputs_and_grads(
    length: int, chunk_size: int, groups: int
) -> None:
    inputs = _inputs(2, length, 4, 8, groups, 5)
    got = _outputs_and_grads(ssd_chunked, inputs, chunk_size)
    want = _outputs_and_grads(ssd_recurrent, inputs, chunk_size)
    for name, a, b in zip(["y", "state", "dx", "ddt", "dA", "dB", "dC"], got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


def test_chunked_matches_recurrent_packed_with_initial_state() -> None:
    inputs = _inputs(1, 70, 2, 4, 1, 3)
    init = torch.randn(1, 2, 4, 3, dtype=F64, requires_grad=True)
    cu = torch.tensor([0, 5, 6, 40, 70])
    got = _outputs_and_grads(ssd_chunked, (*inputs, init), 16, cu_seqlens=cu)
    want = _outputs_and_grads(ssd_recurrent, (*inputs, init), 16, cu_seqlens=cu)
    for a, b in zip(got, want, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_packed_scan_equals_separate_events() -> None:
    x, dt, A, B, C = (t.detach() for t in _inputs(1, 50, 2, 4, 1, 3))
    cu = [0, 13, 50]
    y, state = ssd_chunked(x, dt, A, B, C, 16, cu_seqlens=torch.tensor(cu))
    for s, e in itertools.pairwise(cu):
        y_e, state_e = ssd_chunked(x[:, s:e], dt[:, s:e], A, B[:, s:e], C[:, s:e], 16)
        torch.testing.assert_close(y[:, s:e], y_e, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, state_e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("split", [32, 45])
def test_state_passing_equals_single_run(split: int) -> None:
    x, dt, A, B, C = (t.detach() for t in _inputs(2, 90, 4, 8, 2, 5))
    y, state = ssd_chunked(x, dt, A, B, C, 16)
    y1, s1 = ssd_chunked(x[:, :split], dt[:, :split], A, B[:, :split], C[:, :split], 16)
    y2, s2 = ssd_chunked(x[:, split:], dt[:, split:], A, B[:, split:], C[:, split:], 16,
                         initial_state=s1)
    torch.testing.assert_close(torch.cat([y1, y2], dim=1), y, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s2, state, rtol=1e-10, atol=1e-10)
    _, s2_rec = ssd_recurrent(x[:, split:], dt[:, split:], A, B[:, split:], C[:, split:],
                              initial_state=s1)
    torch.testing.assert_close(s2_rec, state, rtol=1e-10, atol=1e-10)


def test_bf16_inputs_computed_in_float32() -> None:
    x, dt, A, B, C = (t.detach().float() for t in _inputs(1, 40, 2, 4, 1, 3))
    y32, _ = ssd_chunked(x, dt, A, B, C, 16)
    y16, s16 = ssd_chunked(x.bfloat16(), dt.bfloat16(), A, B.bfloat16(), C.bfloat16(), 16)
    assert y16.dtype == torch.bfloat16
    assert s16.dtype == torch.float32
    torch.testing.assert_close(y16.float(), y32, rtol=0.05, atol=0.1)


def _tiny_backbone() -> Mamba2Backbone:
    torch.manual_seed(0)
    return build_backbone("tiny").to(F64)


def test_causal_conv_matches_conv1d() -> None:
    mixer = next(m for m in _tiny_backbone().modules() if isinstance(m, Mamba2Mixer))
    xbc = torch.randn(2, 19, mixer.conv1d.in_channels, dtype=F64)
    want = mixer.conv1d(xbc.transpose(1, 2))[..., :19].transpose(1, 2)
    torch.testing.assert_close(mixer.causal_conv(xbc, torch.arange(19)), want)


def test_packed_backbone_equals_separate_events() -> None:
    model = _tiny_backbone()
    lengths = [23, 41, 2]
    tokens = torch.randn(sum(lengths), FAMILY["tiny"].width, dtype=F64)
    cu = torch.tensor([0, 23, 64, 66])
    packed = model(tokens, cu)
    assert len(packed) == FAMILY["tiny"].n_layers
    for s, e in itertools.pairwise(cu.tolist()):
        alone = model(tokens[s:e])
        for out_p, out_a in zip(packed, alone, strict=True):
            torch.testing.assert_close(out_p[s:e], out_a, rtol=1e-5, atol=1e-5)
    # Without cu_seqlens the second event does see the first (the test is not vacuous).
    assert not torch.allclose(model(tokens)[-1][23:64], packed[-1][23:64])


def test_backbone_backward_is_finite() -> None:
    model = _tiny_backbone()
    tokens = torch.randn(50, FAMILY["tiny"].width, dtype=F64, requires_grad=True)
    sum(o.square().mean() for o in model(tokens, torch.tensor([0, 20, 50]))).backward()
    grads = [tokens.grad, *(p.grad for p in model.parameters())]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", sorted(FM4NPP_PARAMS))
def test_family_parameter_counts_match_fm4npp(name: str) -> None:
    ratio = parameter_count(name) / FM4NPP_PARAMS[name]
    assert 0.85 <= ratio <= 1.15, (name, ratio)


@pytest.mark.skipif(
    FAST_SCAN is None or not torch.cuda.is_available(),
    reason="needs mamba_ssm's Triton kernel mamba_chunk_scan_combined and a CUDA device",
)
def test_fast_path_matches_pure_path() -> None:
    torch.manual_seed(0)
    model = build_backbone("m1", device="cuda")
    tokens = torch.randn(300, FAMILY["m1"].width, device="cuda")
    cu = torch.tensor([0, 100, 300], device="cuda", dtype=torch.int32)
    model.set_fast_path(True)
    fast = model(tokens, cu)
    model.set_fast_path(False)
    pure = model(tokens, cu)
    for a, b in zip(fast, pure, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
