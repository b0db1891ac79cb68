"""The compiled (numba) hopping term against the torch kernel: equal to rounding on random
fields (lattices whose x rows and (t, z) planes fill the kernel's chunks partly, wrap-round
in x at X = 2 and 3), in the full operator and a CG solve; the torch kernel where numba
cannot run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from npfm.lqcd import hopping
from npfm.lqcd.dirac import WilsonDirac
from npfm.lqcd.solver import solve
from npfm.lqcd.su3 import random_field

needs_numba = pytest.mark.skipif(not hopping.AVAILABLE, reason="numba is not installed")
TOLERANCE = {torch.complex128: 1e-13, torch.complex64: 1e-5}


@pytest.fixture(scope="module")
def _compiled() -> None:
    """Compile (or load from numba's cache) both precisions once, outside the tests' time."""
    if hopping.AVAILABLE:
        for dtype in TOLERANCE:
            u = random_field((2, 2, 2, 2), torch.Generator().manual_seed(0), dtype=dtype)
            hopping.Hopping(u)(torch.zeros((*u.shape[1:5], 4, 3), dtype=dtype))


def fields(lattice: tuple[int, int, int, int], dtype: torch.dtype, nrhs: int | None,
           seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A random SU(3) field on (lx, ly, lz, lt) and a random spinor field, B = nrhs."""
    gen = torch.Generator().manual_seed(seed)
    u = random_field(lattice, gen, dtype=dtype)
    rhs = () if nrhs is None else (nrhs,)
    return u, torch.randn((*u.shape[1:5], *rhs, 4, 3), dtype=dtype, generator=gen)


def assert_equal_to_rounding(a: torch.Tensor, b: torch.Tensor) -> None:
    """a == b to the rounding of their precision, relative to the largest element."""
    tol = TOLERANCE[b.dtype] * float(b.abs().max())
    torch.testing.assert_close(a, b, atol=tol, rtol=0)


@needs_numba
@pytest.mark.usefixtures("_compiled")
@pytest.mark.parametrize("lattice", [(4, 4, 4, 8), (4, 2, 6, 8), (2, 4, 6, 4), (3, 2, 2, 5),
                                     (7, 5, 3, 2)])
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("nrhs", [None, 3])
def test_compiled_hop_equals_torch(lattice: tuple[int, int, int, int], dtype: torch.dtype,
                                   nrhs: int | None) -> None:
    """(lx, ly, lz, lt): (7, 5, ...) has 35 sites a plane, not a whole number of chunks."""
    u, psi = fields(lattice, dtype, nrhs)
    dirac = WilsonDirac(u, 0.1)
    assert dirac.backend(psi) == "numba"
    out = dirac.hop(psi)
    assert out.shape == psi.shape
    assert out.dtype == dtype
    assert out.is_contiguous()
    assert_equal_to_rounding(out, dirac.hop_torch(psi))


@needs_numba
@pytest.mark.usefixtures("_compiled")
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_kernel_object_reused_across_calls(dtype: torch.dtype) -> None:
    """One Hopping for many calls: periodic links too, results never alias its buffers
    whatever B comes next, and psi of another dtype or device is refused."""
    u, psi = fields((4, 2, 2, 6), dtype, 2)
    periodic = WilsonDirac(u, 0.1, antiperiodic=False)
    kernel = hopping.Hopping(periodic.links)
    first = kernel(psi)
    kept = first.clone()
    assert_equal_to_rounding(first, periodic.hop_torch(psi))
    for batch in (None, 1):
        other = fields((4, 2, 2, 6), dtype, batch, seed=4)[1]
        assert_equal_to_rounding(kernel(other), periodic.hop_torch(other))
    torch.testing.assert_close(first, kept, atol=0, rtol=0)
    torch.testing.assert_close(kernel(psi), kept, atol=0, rtol=0)
    with pytest.raises(TypeError, match="dtype"):
        kernel(psi.to(torch.complex64 if dtype == torch.complex128 else torch.complex128))
    with pytest.raises(ValueError, match="CPU"):
        kernel(psi.to("meta"))


@needs_numba
@pytest.mark.usefixtures("_compiled")
def test_full_operator_and_solve_agree_on_both_kernels() -> None:
    """Clover operator D psi, D^dag psi and a batched even-odd CG solve, kernel by kernel."""
    u, psi = fields((4, 4, 4, 4), torch.complex128, 2, seed=11)
    fast = WilsonDirac(u, 0.3, csw=1.0, kernel="numba")
    slow = WilsonDirac(u, 0.3, csw=1.0, kernel="torch")
    assert_equal_to_rounding(fast(psi), slow(psi))
    assert_equal_to_rounding(fast.dagger(psi), slow.dagger(psi))
    one, two = solve(fast, psi, tol=1e-11), solve(slow, psi, tol=1e-11)
    assert one.converged
    assert two.converged
    assert abs(one.iterations - two.iterations) <= 1
    torch.testing.assert_close(one.x, two.x, atol=1e-9 * float(two.x.abs().max()), rtol=0)


def test_torch_kernel_where_the_compiled_one_cannot_run(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    u, psi = fields((2, 2, 2, 4), torch.complex128, None)
    dirac = WilsonDirac(u, 0.1)
    assert dirac.backend(psi.to("meta")) == "torch"  # never for a non-CPU tensor
    assert dirac.backend(psi.clone().requires_grad_()) == "torch"
    assert WilsonDirac(u, 0.1, kernel="torch").backend(psi) == "torch"
    with pytest.raises(ValueError, match="kernel"):
        WilsonDirac(u, 0.1, kernel="fortran")
    monkeypatch.setattr(hopping, "AVAILABLE", False)
    assert dirac.backend(psi) == "torch"
    torch.testing.assert_close(dirac.hop(psi), dirac.hop_torch(psi), atol=0, rtol=0)
    with pytest.raises(RuntimeError, match="numba"):
        WilsonDirac(u, 0.1, kernel="numba").hop(psi)
    with pytest.raises(RuntimeError, match="numba"):
        hopping.Hopping(dirac.links)


def test_without_numba_installed() -> None:
    """With numba unimportable the module loads and the operator uses torch."""
    code = textwrap.dedent("""
        import sys
        sys.modules["numba"] = None
        import torch
        from npfm.lqcd import hopping
        from npfm.lqcd.dirac import WilsonDirac
        from npfm.lqcd.su3 import random_field
        u = random_field((2, 2, 2, 2), torch.Generator().manual_seed(0))
        psi = torch.ones((*u.shape[1:5], 4, 3), dtype=u.dtype)
        dirac = WilsonDirac(u, 0.1)
        assert not hopping.AVAILABLE
        assert dirac.backend(psi) == "torch"
        assert dirac.hop(psi).shape == psi.shape
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
