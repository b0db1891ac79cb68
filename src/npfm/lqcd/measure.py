"""From an ensemble directory to observables and correlators (``npfm lqcd measure``).

Per configuration: plaquette, Wilson loops W(r, t), Polyakov loop, and the pion and rho
correlators from a point or wall source. Means and jackknife errors of the correlators
and of their cosh effective masses are written with the per-configuration data
(``correlators.h5`` + Croissant), ``measurements.json`` and ``effective-mass.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_json
from npfm.lqcd import correlators, ildg, observables
from npfm.lqcd.dirac import WilsonDirac
from npfm.lqcd.export import export_correlators
from npfm.lqcd.metadata import load_ensemble, now


@dataclass(frozen=True)
class MeasureSpec:
    """Valence quark and source choices, in lattice units."""

    mass: float = 0.2  # bare quark mass m0
    csw: float = 0.0  # clover coefficient (0: plain Wilson)
    source: str = "point"  # or "wall" (gauge dependent, see correlators.wall_source)
    tol: float = 1e-10  # CG relative residual
    loops: int = 2  # Wilson loops up to r, t <= loops

    def check(self) -> None:
        if self.source not in ("point", "wall"):
            raise NpfmError("measure option source", f"unknown source {self.source!r}",
                            "use point or wall")
        if not self.mass > -2.0:
            raise NpfmError("measure option mass", f"bare mass {self.mass}",
                            "use a mass above -2 (the CG needs a well-conditioned operator)")


def jackknife(samples: np.ndarray, func: Callable[[np.ndarray], np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Jackknife mean and error of func(mean over configurations), samples [n, ...]."""
    n = samples.shape[0]
    full = func(samples.mean(axis=0))
    if n < 2:
        return full, np.full_like(full, np.nan)
    total = samples.sum(axis=0)
    leave_out = np.stack([func((total - samples[i]) / (n - 1)) for i in range(n)])
    err = np.sqrt((n - 1) / n * np.nansum((leave_out - leave_out.mean(axis=0)) ** 2, axis=0))
    return full, err


def measure(ensemble: Path, out: Path, spec: MeasureSpec,
            progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Measure every configuration of an ensemble; returns the ``measurements.json`` record."""
    spec.check()
    record = load_ensemble(ensemble)
    size = record["physics"]["size"]
    lattice = (size["lx"], size["ly"], size["lz"], size["lt"])
    per_config: list[dict[str, Any]] = []
    corr: dict[str, list[np.ndarray]] = {"pion": [], "rho": []}
    for entry in record["configurations"]:
        config = ildg.read_config(Path(ensemble) / entry["file"], expected=lattice)
        u = config.u.to(torch.complex128)
        dirac = WilsonDirac(u, spec.mass, spec.csw)
        prop, iterations = correlators.propagator(dirac, spec.source, tol=spec.tol,
                                                  progress=progress)
        corr["pion"].append(correlators.pion(prop))
        corr["rho"].append(correlators.rho(prop))
        poly = observables.polyakov_loop(u)
        per_config.append({
            "file": entry["file"], "trajectory": entry["trajectory"],
            "plaquette": observables.plaquette(u),
            "wilson_loops": observables.wilson_loops(u, spec.loops, spec.loops),
            "polyakov_loop": [poly.real, poly.imag], "cg_iterations": iterations})
    arrays = {k: np.stack(v) for k, v in corr.items()}
    summary: dict[str, Any] = {}
    curves = {}
    for name, values in arrays.items():
        mean, err = jackknife(values, lambda c: c)
        m_eff, m_err = jackknife(values, correlators.effective_mass)
        summary[name] = {"correlator": mean.tolist(), "correlator_error": err.tolist(),
                         "effective_mass": _finite(m_eff), "effective_mass_error": _finite(m_err)}
        curves[name] = (m_eff, m_err)
    out.mkdir(parents=True, exist_ok=True)
    trajectories = [c["trajectory"] for c in per_config]
    export_correlators(out / "correlators.h5", arrays,
                       {"ensemble": record["name"], "mass": spec.mass, "csw": spec.csw,
                        "source": spec.source, "beta": record["physics"]["action"]["gluon"]
                        ["beta"], "lattice_lx_ly_lz_lt": list(lattice)}, trajectories)
    correlators.plot_effective_mass(curves, out / "effective-mass.png")
    result = {"ensemble": record["name"], "ensemble_path": str(Path(ensemble).resolve()),
              "created": now(), "valence": {"action": "Wilson-clover" if spec.csw else "Wilson",
                                            "mass": spec.mass, "csw": spec.csw,
                                            "source": spec.source, "cg_tolerance": spec.tol},
              "units": "lattice units", "summary": summary, "configurations": per_config}
    atomic_write_json(out / "measurements.json", result)
    return result


def _finite(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]
