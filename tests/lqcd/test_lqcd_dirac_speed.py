"""The spin-projected hopping term (torch and compiled kernels) against a direct evaluation of
-1/2 sum_mu [(1 - g_mu) U_mu(x) psi(x + mu) + (1 + g_mu) U_mu(x - mu)^dag psi(x - mu)]
on random SU(3) fields, both precisions, with and without right-hand sides."""

from __future__ import annotations

import pytest
import torch

from npfm.lqcd import hopping
from npfm.lqcd.dirac import WilsonDirac, gamma_matrices
from npfm.lqcd.su3 import NDIM, random_field, shift

LATTICE = (4, 6, 2, 8)  # lx, ly, lz, lt: unequal extents catch swapped axes


def reference_hop(u: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Full 4-spinor, full 3 x 3 evaluation, antiperiodic in t; psi (T, Z, Y, X, B, 4, 3)."""
    links = u.clone()
    links[3, -1] = -links[3, -1]
    g = gamma_matrices(u.dtype)
    eye = torch.eye(4, dtype=u.dtype)
    total = torch.zeros_like(psi)
    for mu in range(NDIM):
        back = shift(links[mu], mu, -1).conj().transpose(-1, -2)
        fwd = torch.einsum("tzyxab,tzyxnsb->tzyxnsa", links[mu], shift(psi, mu, 1))
        bwd = torch.einsum("tzyxab,tzyxnsb->tzyxnsa", back, shift(psi, mu, -1))
        total += torch.einsum("st,...tc->...sc", eye - g[mu], fwd)
        total += torch.einsum("st,...tc->...sc", eye + g[mu], bwd)
    return -0.5 * total


@pytest.mark.parametrize("kernel", [
    "torch",
    pytest.param("numba", marks=pytest.mark.skipif(not hopping.AVAILABLE,
                                                   reason="numba is not installed"))])
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("nrhs", [None, 3])
def test_hop_equals_direct_formula(kernel: str, dtype: torch.dtype, nrhs: int | None
                                   ) -> None:
    gen = torch.Generator().manual_seed(5)
    u = random_field(LATTICE, gen, dtype=dtype)
    rhs = () if nrhs is None else (nrhs,)
    psi = torch.randn((*u.shape[1:5], *rhs, 4, 3), dtype=dtype, generator=gen)
    out = WilsonDirac(u, 0.2, kernel=kernel).hop(psi)
    assert out.shape == psi.shape
    assert out.dtype == dtype
    assert out.is_contiguous()
    batched = psi if nrhs is not None else psi[..., None, :, :]
    expected = reference_hop(u, batched).reshape(psi.shape)
    tol = 1e-12 if dtype == torch.complex128 else 2e-5
    torch.testing.assert_close(out, expected, atol=tol, rtol=tol)
    assert expected.abs().max() > 1.0



def test_hop_results_survive_later_calls_with_other_batches() -> None:
    """The reused workspace never aliases a returned field, whatever B comes next."""
    gen = torch.Generator().manual_seed(7)
    u = random_field(LATTICE, gen)
    dirac = WilsonDirac(u, 0.2, kernel="torch")
    one = torch.randn((*u.shape[1:5], 4, 3), dtype=u.dtype, generator=gen)
    first = dirac.hop(one)
    kept = first.clone()
    for batch in (2, 1):
        dirac.hop(torch.randn((*u.shape[1:5], batch, 4, 3), dtype=u.dtype, generator=gen))
    torch.testing.assert_close(first, kept, atol=0, rtol=0)
    torch.testing.assert_close(dirac.hop(one), kept, atol=0, rtol=0)
