"""The compiled simulation kernels (numba) against the NumPy code: the same hits, bit for
bit, for the same seeds on Pythia events; the kernels alone on edge cases; the switch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

from npfm.detectors import kernels, load_geometry, simulate_events
from npfm.detectors.helix import cylinder_crossing
from npfm.detectors.material import collision_deposit
from npfm.detectors.propagate import propagate
from npfm.detectors.simulation import lexsort_ints
from npfm.physics import generate

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")


def simulated(events: list[Any], detector: str, name: str) -> list[dict[str, Any]]:
    with kernels.backend(name):
        return simulate_events(events, load_geometry(detector), np.random.default_rng(11))


def assert_identical(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    """Every column of every event equal bit for bit (same dtype, NaN where NaN)."""
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            x, y = np.asarray(row_a[key]), np.asarray(row_b[key])
            assert x.dtype == y.dtype, key
            if x.dtype.kind == "f":
                assert x.tobytes() == y.tobytes(), key
            else:
                assert np.array_equal(x, y), key


@needs_numba
@pytest.mark.parametrize(("detector", "physics"), [("sphenix", "pp200"), ("aleph", "ee_z")])
def test_same_hits_as_numpy(detector: str, physics: str) -> None:
    events = list(generate(physics, 12, seed=2024))
    numpy_rows = simulated(events, detector, "numpy")
    assert sum(len(r["hit_x"]) for r in numpy_rows) > 1000
    assert_identical(simulated(events, detector, "numba"), numpy_rows)


def helix_inputs(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Particles on helices over a wide range of curvature (psi below and above 0.1)."""
    pt = rng.uniform(0.05, 20.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    return {"x": rng.normal(0, 20, n), "y": rng.normal(0, 20, n), "px": pt * np.cos(phi),
            "py": pt * np.sin(phi), "pz": rng.normal(0, 2, n),
            "kappa": rng.choice([-1, 1], n) * 0.0045 / pt}


@needs_numba
@pytest.mark.parametrize(("detector", "material"), [("sphenix", True), ("aleph", True),
                                                    ("aleph", False)])
def test_propagation_matches_numpy(detector: str, material: bool) -> None:
    """Crossings of random particles, loopers and first-order steps included, and the
    random stream after them; with and without scattering and energy loss."""
    rng = np.random.default_rng(5)
    n = 600
    h = helix_inputs(rng, n)
    inputs = (rng.normal(0, 0.01, n), rng.normal(0, 0.01, n), rng.normal(0, 5, n), h["px"],
              h["py"], h["pz"], rng.choice([-1.0, 1.0], n), np.full(n, 0.13957039),
              np.zeros(n), load_geometry(detector))
    results = []
    for name in ("numpy", "numba"):
        gen = np.random.default_rng(9)
        with kernels.backend(name):
            cross = propagate(*inputs, gen, multiple_scattering=material,
                              energy_loss=material)
        results.append([np.asarray(v).tobytes() for v in vars(cross).values()]
                       + [gen.random(4).tobytes()])
    assert len(cross.layer) > 10 * n
    assert results[0] == results[1]


@needs_numba
def test_crossing_kernel_matches_numpy() -> None:
    rng = np.random.default_rng(6)
    h = helix_inputs(rng, 500)
    radius = rng.uniform(0.5, 150.0, (4, 500))
    radius[0, :20] = np.nan  # no surface
    args = (h["x"], h["y"], h["px"], h["py"], h["kappa"], radius)
    with kernels.backend("numpy"):
        expected = cylinder_crossing(*args)
    got = cylinder_crossing(*args)
    assert np.isinf(expected).any()
    assert np.isfinite(expected).any()
    assert got.tobytes() == expected.tobytes()


@needs_numba
def test_collision_deposit_kernels_match_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gas deposits from primary collisions: two gases (exponents 2.0 and 2.2), deposits
    without collisions (zero path), several chunks; equal bit for bit, same random stream."""
    rng = np.random.default_rng(8)
    n = 4000
    one = np.ones(n)
    path = rng.uniform(0.0, 5.0, n)
    path[::7] = 0.0
    args = (rng.uniform(0.06, 5.0, n), rng.choice([0.1396, 0.9383], n), one, 0.5 * one,
            188e-6 * one, 1.6e-3 * one, path, 15.8e-6 * one, 1e-2 * one,
            np.where(rng.random(n) < 0.5, 2.0, 2.2))
    monkeypatch.setattr("npfm.detectors.material._CHUNK", 1 << 12)
    results = []
    for name in ("numpy", "numba"):
        stream = np.random.default_rng(9)
        with kernels.backend(name):
            results.append((collision_deposit(*args, stream), stream.random()))
    assert (results[0][0] == 0).sum() >= n // 7
    assert results[1][0].tobytes() == results[0][0].tobytes()
    assert results[1][1] == results[0][1]


@pytest.mark.parametrize("span", [(0, 5), (-30_000, 30_000), (-2**40, 2**40)])
def test_packed_lexsort_is_numpy_lexsort(span: tuple[int, int]) -> None:
    """The hits' readout order: packed keys (or numpy's lexsort where they do not fit in
    63 bits) give np.lexsort's permutation, ties kept in input order."""
    rng = np.random.default_rng(12)
    n = 5000
    keys = [rng.integers(*span, n), rng.integers(0, 3, n).astype(np.int16),
            rng.integers(0, 4, n).astype(np.int32), np.full(n, 7), np.sort(rng.integers(0, 9, n))]
    np.testing.assert_array_equal(lexsort_ints(keys), np.lexsort(keys))
    assert lexsort_ints([np.zeros(0, np.int64)]).shape == (0,)


def test_backend_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    with kernels.backend("numpy"):
        assert not kernels.compiled()
    assert kernels.compiled() == kernels.AVAILABLE
    with pytest.raises(ValueError, match="backend"), kernels.backend("cuda"):
        pass
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    assert not kernels.compiled()
    with pytest.raises(RuntimeError, match="numba"), kernels.backend("numba"):
        pass


PROPAGATE_RANDOM = """
import hashlib
import numpy as np
from npfm.detectors import load_geometry
from npfm.detectors.propagate import propagate
from npfm.detectors.simulation import lexsort_ints
rng = np.random.default_rng(2)
n = 300
pt, phi = rng.uniform(0.1, 5.0, n), rng.uniform(-np.pi, np.pi, n)
cross = propagate(np.zeros(n), np.zeros(n), rng.normal(0, 5, n), pt * np.cos(phi),
                  pt * np.sin(phi), rng.normal(0, 1, n), rng.choice([-1.0, 1.0], n),
                  np.full(n, 0.13957039), np.zeros(n), load_geometry("sphenix"), rng)
digest = hashlib.sha256(b"".join(np.asarray(v).tobytes() for v in vars(cross).values()))
"""


def run_script(prefix: str) -> str:
    code = textwrap.dedent(prefix) + PROPAGATE_RANDOM + "print(digest.hexdigest())"
    return subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                          capture_output=True, text=True).stdout.strip()


def test_without_numba_installed() -> None:
    """With numba unimportable the simulation runs its NumPy code, and gives the same
    crossings as with numba importable (the compiled kernels where it is installed)."""
    without = run_script("""
        import sys
        sys.modules["numba"] = None
        from npfm.detectors import kernels
        assert not kernels.AVAILABLE and not kernels.compiled()
    """)
    assert len(without) == 64
    assert run_script("from npfm.detectors import kernels\n") == without
