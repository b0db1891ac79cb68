"""From an ensemble directory to observables and correlators (``npfm lqcd measure``).

Per configuration: plaquette, Wilson loops W(r, t), Polyakov loop, and the pion and rho
correlators from a point or a wall source (wall sources in Coulomb or Landau gauge, fixed
by ``npfm.lqcd.gaugefix``, with the convergence recorded). With ``t_sink`` > 0 also the
nucleon two-point and isovector three-point functions (``npfm.lqcd.baryons``,
``npfm.lqcd.structure``). Means and jackknife errors of the correlators, effective masses
and ratios are written with the per-configuration data (``correlators.h5`` + Croissant),
``measurements.json``, ``effective-mass.png`` and, for the nucleon, ``nucleon.png``.
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
from npfm.lqcd import baryons, correlators, fits, gaugefix, ildg, observables, structure
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
    gauge: str = "auto"  # none, coulomb or landau; auto: coulomb for wall sources
    gauge_tol: float = 1e-12  # gauge fixing stops at theta < gauge_tol
    t_sink: int = 0  # nucleon source-sink separation; 0: no nucleon
    momenta: int = 1  # non-zero nucleon momenta (x, y, z in turn) of the 3-point functions

    @property
    def solves_per_config(self) -> int:
        """Linear solves per configuration (for progress bars)."""
        if not self.t_sink:
            return 12
        return 12 + baryons.SEQUENTIAL_SOLVES + (12 if self.source == "wall" else 0)

    @property
    def fixed_gauge(self) -> str:
        if self.gauge == "auto":
            return "coulomb" if self.source == "wall" else "none"
        return self.gauge

    def check(self) -> None:
        if self.source not in ("point", "wall"):
            raise NpfmError("measure option source", f"unknown source {self.source!r}",
                            "use point or wall")
        if self.gauge not in ("auto", "none", *gaugefix.GAUGES):
            raise NpfmError("measure option gauge", f"unknown gauge {self.gauge!r}",
                            "use auto, none, coulomb or landau")
        if self.source == "wall" and self.fixed_gauge == "none":
            raise NpfmError("measure option gauge", "a wall source needs a fixed gauge",
                            "use --gauge coulomb (or landau)")
        if self.t_sink < 0 or not 0 <= self.momenta <= 3:
            raise NpfmError("measure option t-sink/momenta", f"{self.t_sink}/{self.momenta}",
                            "use t_sink >= 0 (0: no nucleon) and 0 to 3 momenta")
        if not self.mass > -2.0:
            raise NpfmError("measure option mass", f"bare mass {self.mass}",
                            "use a mass above -2 (the CG needs a well-conditioned operator)")


def measure(ensemble: Path, out: Path, spec: MeasureSpec,
            progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Measure every configuration of an ensemble; returns the ``measurements.json`` record."""
    spec.check()
    record = load_ensemble(ensemble)
    size = record["physics"]["size"]
    lattice = (size["lx"], size["ly"], size["lz"], size["lt"])
    if spec.t_sink >= lattice[3]:
        raise NpfmError("measure option t-sink", f"t_sink {spec.t_sink} >= lt {lattice[3]}",
                        "use a separation shorter than the time extent")
    momenta = baryons.DEFAULT_MOMENTA[: spec.momenta + 1]
    nucleon: list[baryons.NucleonData] = []
    per_config: list[dict[str, Any]] = []
    corr: dict[str, list[np.ndarray]] = {"pion": [], "rho": []}
    for entry in record["configurations"]:
        config = ildg.read_config(Path(ensemble) / entry["file"], expected=lattice)
        u = config.u.to(torch.complex128)
        extra: dict[str, Any] = {}
        u_valence = u
        if spec.fixed_gauge != "none":
            fixed = gaugefix.fix_gauge(u, spec.fixed_gauge, tol=spec.gauge_tol)
            if not fixed.converged:
                raise NpfmError(entry["file"], f"{spec.fixed_gauge} gauge fixing stopped at "
                                f"theta {fixed.theta[-1]:.1e}", "raise --gauge-tol")
            u_valence, extra["gauge_fixing"] = fixed.u, fixed.report()
        dirac = WilsonDirac(u_valence, spec.mass, spec.csw)
        prop, iterations = correlators.propagator(dirac, spec.source, tol=spec.tol,
                                                  progress=progress)
        if spec.t_sink:
            nucleon.append(baryons.nucleon_correlators(
                dirac, spec.t_sink, momenta, spec.tol, progress,
                prop if spec.source == "point" else None))
        corr["pion"].append(correlators.pion(prop))
        corr["rho"].append(correlators.rho(prop))
        poly = observables.polyakov_loop(u)
        per_config.append({
            "file": entry["file"], "trajectory": entry["trajectory"],
            "plaquette": observables.plaquette(u),
            "wilson_loops": observables.wilson_loops(u, spec.loops, spec.loops),
            "polyakov_loop": [poly.real, poly.imag], "cg_iterations": iterations, **extra})
    arrays = {k: np.stack(v) for k, v in corr.items()}
    summary: dict[str, Any] = {}
    curves = {}
    for name, values in arrays.items():
        mean, err = fits.jackknife(values, lambda c: c)
        m_eff, m_err = fits.jackknife(values, correlators.effective_mass)
        summary[name] = {"correlator": mean.tolist(), "correlator_error": err.tolist(),
                         "effective_mass": fits.finite(m_eff),
                         "effective_mass_error": fits.finite(m_err)}
        curves[name] = (m_eff, m_err)
    out.mkdir(parents=True, exist_ok=True)
    if nucleon:
        summary["nucleon"], nucleon_arrays, plot = structure.nucleon_summary(
            nucleon, spec.t_sink, momenta)
        arrays.update(nucleon_arrays)
        fits.plot_report({"nucleon": plot["mass"]}, plot["ratios"], out / "nucleon.png")
    trajectories = [c["trajectory"] for c in per_config]
    export_correlators(out / "correlators.h5", arrays,
                       {"ensemble": record["name"], "mass": spec.mass, "csw": spec.csw,
                        "source": spec.source, "beta": record["physics"]["action"]["gluon"]
                        ["beta"], "lattice_lx_ly_lz_lt": list(lattice)}, trajectories,
                       sources={name: "point at the origin" if name.startswith("nucleon")
                                else f"{spec.source} at t = 0 ({spec.fixed_gauge} gauge)"
                                for name in arrays})
    correlators.plot_effective_mass(curves, out / "effective-mass.png")
    result = {"ensemble": record["name"], "ensemble_path": str(Path(ensemble).resolve()),
              "created": now(), "valence": {"action": "Wilson-clover" if spec.csw else "Wilson",
                                            "mass": spec.mass, "csw": spec.csw,
                                            "source": spec.source, "cg_tolerance": spec.tol,
                                            "gauge": spec.fixed_gauge, "t_sink": spec.t_sink},
              "units": "lattice units", "summary": summary, "configurations": per_config}
    atomic_write_json(out / "measurements.json", result)
    return result
