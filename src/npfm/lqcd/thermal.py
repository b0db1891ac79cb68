"""Thermal (in-medium) meson correlators: temporal and spatial (screening) correlators of a
heavy quark at Nt << Ns, the reconstructed correlator G_rec and the Polyakov-loop
susceptibility. Lattice units; the temperature is T = 1 / Nt.

- Temporal G(tau) = sum_x C_Gamma(x, tau) and spatial G(z) = sum_{x, y, t} C_Gamma(x, y, z, t)
  of the same point-source propagator (Gattringer and Lang 2010, ch. 12; Karsch and
  Laermann, "Thermodynamics and in-medium hadron properties from lattice QCD", 2003).
- G_rec(tau; T) = sum_{m=0}^{N-1} G(tau + m Nt; T / N) from a correlator on N Nt slices
  (same spatial lattice and coupling), which equals the correlator at temperature T for an
  unchanged spectral function; G / G_rec != 1 signals in-medium modification (Ding et al.,
  Phys. Rev. D 86 (2012) 014509; Datta, Karsch, Petreczky and Wetzorke, Phys. Rev. D 69
  (2004) 094507).
- chi_P = Ns^3 (<|P|^2> - <|P|>^2) of the spatially averaged Polyakov loop P per
  configuration (e.g. Gattringer and Lang 2010, ch. 12), jackknife error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_json
from npfm.lqcd import fits, ildg, observables
from npfm.lqcd.correlators import meson_sites, propagator
from npfm.lqcd.dirac import WilsonDirac, gamma_matrices
from npfm.lqcd.metadata import load_ensemble, now

CHANNELS = {"pseudoscalar": 4, "vector_x": 0}  # Gamma = gamma_5, gamma_1


def temporal_and_spatial(u: torch.Tensor, mass: float, tol: float = 1e-10
                         ) -> dict[str, np.ndarray]:
    """G(tau) and G(z) per channel from one point source at the origin."""
    prop, _ = propagator(WilsonDirac(u, mass), "point", 0, tol)
    g = gamma_matrices(prop.dtype)
    out = {}
    for name, index in CHANNELS.items():
        sites = meson_sites(prop, g[index])
        out[f"{name}/temporal"] = sites.sum(dim=(1, 2, 3)).cpu().numpy()
        out[f"{name}/spatial"] = sites.sum(dim=(0, 2, 3)).cpu().numpy()
    return out


def reconstructed(g_cold: np.ndarray, nt: int) -> np.ndarray:
    """G_rec(tau), tau = 0 .. nt - 1, from a correlator [..., N nt] at temperature T / N."""
    n_slices = np.shape(g_cold)[-1]
    if nt < 1 or n_slices % nt:
        raise NpfmError("reconstructed correlator", f"{n_slices} slices for Nt = {nt}",
                        "the reference lattice needs a multiple of Nt time slices")
    return np.asarray(g_cold).reshape(*np.shape(g_cold)[:-1], n_slices // nt, nt).sum(-2)


def polyakov_susceptibility(loops: np.ndarray, spatial_volume: int) -> tuple[float, float]:
    """chi_P and its jackknife error from complex Polyakov loops, one per configuration."""
    p = np.abs(np.asarray(loops))
    samples = np.stack([p ** 2, p], axis=1)
    value, err = fits.jackknife(samples, lambda s: np.array(
        spatial_volume * (s[0] - s[1] ** 2)))
    return float(value), float(err)


def thermal_summary(hot: list[dict[str, np.ndarray]], cold: list[dict[str, np.ndarray]],
                    nt: int) -> dict[str, Any]:
    """Jackknife means of G(tau), G(z), G_rec and G / G_rec per channel (per-config dicts of
    ``temporal_and_spatial``, at Nt and on N Nt slices)."""
    out: dict[str, Any] = {"nt": nt}
    for name in CHANNELS:
        temporal = np.stack([h[f"{name}/temporal"] for h in hot])
        spatial = np.stack([h[f"{name}/spatial"] for h in hot])
        rec = reconstructed(np.stack([c[f"{name}/temporal"] for c in cold]), nt)
        g, g_err = fits.jackknife(temporal, lambda x: x)
        s, s_err = fits.jackknife(spatial, lambda x: x)
        rec_mean = rec.mean(axis=0)

        def over_rec(x: np.ndarray, r: np.ndarray = rec_mean) -> np.ndarray:
            return x / r
        ratio, ratio_err = fits.jackknife(temporal, over_rec)
        out[name] = {"temporal": g.tolist(), "temporal_error": fits.finite(g_err),
                     "spatial": s.tolist(), "spatial_error": fits.finite(s_err),
                     "reconstructed": rec_mean.tolist(), "ratio_to_reconstructed":
                     ratio.tolist(), "ratio_error": fits.finite(ratio_err),
                     "ratio_error_note": "hot-ensemble error only (G_rec mean held fixed)"}
    return out


def _ensemble_fields(path: Path) -> tuple[dict[str, Any], list[torch.Tensor]]:
    record = load_ensemble(path)
    size = record["physics"]["size"]
    lattice = (size["lx"], size["ly"], size["lz"], size["lt"])
    return record, [ildg.read_config(Path(path) / c["file"], expected=lattice).u
                    .to(torch.complex128) for c in record["configurations"]]


def measure_thermal(hot_path: Path, cold_path: Path, out: Path, mass: float,
                    tol: float = 1e-10) -> dict[str, Any]:
    """The in-medium workflow: correlators on the hot ensemble (Nt slices) and the
    reference ensemble (a multiple of Nt slices, same spatial lattice), G / G_rec and the
    Polyakov-loop susceptibility of the hot ensemble, written to ``out``/thermal.json."""
    hot_record, hot = _ensemble_fields(hot_path)
    cold_record, cold = _ensemble_fields(cold_path)
    hs, cs = hot_record["physics"]["size"], cold_record["physics"]["size"]
    if [hs[k] for k in ("lx", "ly", "lz")] != [cs[k] for k in ("lx", "ly", "lz")]:
        raise NpfmError(str(cold_path), "spatial lattice differs from the hot ensemble",
                        "generate the reference ensemble on the same spatial lattice")
    nt = hs["lt"]
    summary = thermal_summary([temporal_and_spatial(u, mass, tol) for u in hot],
                              [temporal_and_spatial(u, mass, tol) for u in cold], nt)
    loops = np.array([observables.polyakov_loop(u) for u in hot])
    chi, chi_err = (polyakov_susceptibility(loops, hs["lx"] * hs["ly"] * hs["lz"])
                    if len(hot) > 1 else (float("nan"), float("nan")))
    result = {"hot_ensemble": hot_record["name"], "reference_ensemble": cold_record["name"],
              "created": now(), "mass": mass, "temperature": f"1/{nt} (lattice units)",
              "reference_slices": cs["lt"], "correlators": summary,
              "polyakov_loop": {"mean_abs": float(np.abs(loops).mean()),
                                "susceptibility": chi, "susceptibility_error": chi_err},
              "units": "lattice units"}
    atomic_write_json(Path(out) / "thermal.json", result)
    return result
