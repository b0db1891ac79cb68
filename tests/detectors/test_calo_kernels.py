"""The calorimeter cell simulation after its speed-up (issue 17): the same events as before
for the same seeds, with and without the compiled kernels; the kernels alone on edge cases
against the NumPy code."""

from __future__ import annotations

import hashlib
import pickle
from functools import cache
from typing import Any

import numpy as np
import pytest

from npfm.detectors import calorimeter, kernels, load_geometry, showers, simulate_events
from npfm.physics import generate
from npfm.physics.record import GeneratedEvent

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")
#: sha256 of every column of 8 simulated events (``digest``), computed with commit 5f73837,
#: before the speed-up; epic has waveforms and imaging-layer hits (1,462 of them here)
DIGESTS = {
    ("sphenix", "pp200"): "861aea3ebef3daa54b430dab4bad6be72c7bcac4833988a0875381db65455b11",
    ("epic", "ep_eic"): "33a4f66f80d252bdfe1f9870b3706d759b645fdc91d1e6fae20cd9f05cf67c02",
}


@cache
def events(physics: str) -> list[GeneratedEvent]:
    return list(generate(physics, 8, seed=4242))


def digest(rows: list[dict[str, Any]]) -> str:
    """sha256 of the pickled rows: every column's dtype, shape and bytes, in order."""
    return hashlib.sha256(pickle.dumps(rows, protocol=5)).hexdigest()


@pytest.mark.parametrize("backend", ["numpy", "auto"])
@pytest.mark.parametrize(("detector", "physics"), sorted(DIGESTS))
def test_same_cells_as_before_the_speed_up(detector: str, physics: str, backend: str) -> None:
    with kernels.backend(backend):
        rows = simulate_events(events(physics), detector, np.random.default_rng(4242))
    assert sum(len(r["cell_energy"]) for r in rows) > 200
    assert digest(rows) == DIGESTS[detector, physics]


def both(func: Any, *args: Any, seed: int = 0) -> list[list[bytes]]:
    """Outputs of ``func`` (and the random stream after it) with NumPy and compiled code."""
    out = []
    for name in ("numpy", "numba"):
        rng = np.random.default_rng(seed)
        with kernels.backend(name):
            result = func(*args, rng) if seed else func(*args)
        values = vars(result).values() if hasattr(result, "__dataclass_fields__") else result
        out.append([np.asarray(v).dtype.str.encode() + np.asarray(v).tobytes()
                    for v in values] + [rng.random(3).tobytes()])
    return out


def particles(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Entry points, unit directions (some along z) and times of ``n`` particles, and
    their distances to the inner and outer radius of sPHENIX's calorimeters."""
    point = rng.normal(0.0, 90.0, (3, n))
    u = rng.normal(0.0, 1.0, (3, n))
    u[:, :5] = [[0.0], [0.0], [1.0]]  # along z: the lateral frame's degenerate case
    u /= np.linalg.norm(u, axis=0)
    d_in = np.cumsum(rng.uniform(0.0, 40.0, (n, 3)), axis=1)
    return point, u, rng.uniform(0.0, 5.0, n), d_in, d_in + rng.uniform(5.0, 30.0, (n, 3))


@needs_numba
def test_place_and_spots_match_numpy() -> None:
    rng = np.random.default_rng(8)
    point, u, t0, d_in, d_out = particles(40, rng)
    owner = rng.integers(0, 40, 3000)
    depth = rng.uniform(-1.0, 40.0, 3000)  # beyond the last calorimeter too: leaked
    depth[:7] = np.nan
    unit = np.array([0.7, 17.0, 20.0])
    placed = both(calorimeter._place, depth, owner, (d_in, d_out), unit)
    assert placed[0] == placed[1]
    k, dist = calorimeter._place(depth, owner, (d_in, d_out), unit)
    assert (k == 3).any()
    assert np.isnan(dist).sum() > 7
    args = (owner, dist, rng.exponential(1.0, 3000), k, (point, u, t0),
            rng.uniform(0.0, 2.0, 3000), np.array([1.2, 17.0, 20.0]))
    spots = both(calorimeter._spots, *args, seed=3)
    assert spots[0] == spots[1]


@needs_numba
def test_tower_keys_match_numpy() -> None:
    """Deposits inside and outside the eta range and the fibre length of a calorimeter."""
    rng = np.random.default_rng(4)
    n = 5000
    calos = load_geometry("epic").calorimeters
    dep = calorimeter._Deposits(
        rng.integers(0, 50, n), rng.integers(0, len(calos), n), rng.normal(0.0, 100.0, n),
        rng.normal(0.0, 100.0, n), rng.normal(0.0, 400.0, n), rng.uniform(0.0, 1.0, n),
        rng.uniform(0.0, 9.0, n))
    dep.x[:3] = dep.y[:3] = 0.0  # on the axis
    fibre = calos[dep.calo[3]].waveform
    assert fibre is not None
    dep.z[3:5] = fibre.z_end0, fibre.z_end1  # at the fibre ends: inside
    args = (dep, rng.integers(0, 5, 50), calos, max(c.n_eta * c.n_phi for c in calos))
    keys = both(calorimeter._tower_keys, *args)
    assert keys[0] == keys[1]
    assert 0 < len(calorimeter._tower_keys(*args)[1]) < n


@needs_numba
def test_smearing_and_depths_match_numpy() -> None:
    """Per-(particle, subsystem) smearing on ePIC's 12 layers of one subsystem; spot depths
    for shapes inside and outside the tabulated range."""
    rng = np.random.default_rng(6)
    calos = load_geometry("epic").calorimeters
    args = (rng.integers(0, 30, 4000), rng.integers(0, len(calos), 4000),
            rng.exponential(0.1, 4000), rng.random(30) < 0.5, calos)
    smeared = both(calorimeter._smear, *args, seed=2)
    assert smeared[0] == smeared[1]
    alpha = np.concatenate([rng.uniform(0.5, 35.0, 200), [1.0, 30.0]])
    depths = both(showers._stratified_gamma, alpha, rng.uniform(0.2, 2.0, 202), 64)
    assert depths[0] == depths[1]
