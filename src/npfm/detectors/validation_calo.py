"""Calorimeter checks of ``npfm validate-physics`` (sPHENIX geometry).

  calo_resolution  electron guns (1, 2, 4, 8, 16 GeV at |eta| < 0.3) through the full
                   simulation; the spread of the EMCal cell sum, fitted to
                   sigma/E = a/sqrt(E) (+) b, against the geometry file's published values
                   (sPHENIX 2016 beam test, arXiv:1704.01461: 15.5 %/sqrt(E) (+) 2.8 %):
                   a within 15 %, b within 0.02;
  calo_profile     sampled longitudinal profiles of 4 GeV electron showers in the EMCal
                   against Grindhammer and Peters' average profile (arXiv:hep-ex/0001020):
                   containment within the EMCal depth within 1 % and the centre of gravity
                   within 5 %.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from npfm.detectors.geometry import load_geometry
from npfm.detectors.showers import containment, em_spots, gp_average
from npfm.detectors.simulation import simulate_events
from npfm.detectors.validation import Check, _gun

ENERGIES_GEV = (1.0, 2.0, 4.0, 8.0, 16.0)
PROFILE_GEV = 4.0


def fit_resolution(energy: np.ndarray, sigma_over_e: np.ndarray) -> tuple[float, float]:
    """(a, b) of sigma/E = a/sqrt(E) (+) b: least squares, linear in a^2 and b^2."""
    design = np.column_stack([1.0 / energy, np.ones_like(energy)])
    coef, *_ = np.linalg.lstsq(design, sigma_over_e ** 2, rcond=None)
    a2, b2 = np.maximum(coef, 0.0)
    return float(np.sqrt(a2)), float(np.sqrt(b2))


def resolution(n_events: int, seed: int) -> tuple[Check, dict[str, Any]]:
    geo = load_geometry("sphenix")
    emcal = geo.calorimeters[0]
    res, mean = [], []
    for i, e in enumerate(ENERGIES_GEV):
        events = _gun(n_events, seed + i, pdg=11, p_range=(e, e), eta_range=(-0.3, 0.3))
        rows = simulate_events(events, geo, np.random.default_rng([seed, i]),
                               include_objects=False)
        sums = np.array([r["cell_energy"][r["cell_subsystem"] == emcal.subsystem].sum()
                         for r in rows])
        mean.append(sums.mean())
        res.append(sums.std(ddof=1) / sums.mean())
    energies, sig = np.array(ENERGIES_GEV), np.array(res)
    a, b = fit_resolution(energies, sig)
    ok = abs(a / emcal.em_stochastic - 1) < 0.15 and abs(b - emcal.em_constant) < 0.02
    detail = (f"EMCal electrons: fitted {100 * a:.1f} %/sqrt(E) (+) {100 * b:.1f} % vs "
              f"published {100 * emcal.em_stochastic:.1f} %/sqrt(E) (+) "
              f"{100 * emcal.em_constant:.1f} % (arXiv:1704.01461); response "
              + ", ".join(f"{m / e:.3f}" for m, e in zip(mean, ENERGIES_GEV, strict=True))
              + f" at {', '.join(f'{e:g}' for e in ENERGIES_GEV)} GeV")
    return Check("calo_resolution", ok, a, "a within 15 %, b within 0.02 of the geometry "
                 "file", detail), {"energy": energies, "resolution": sig, "a": a, "b": b,
                                   "published": (emcal.em_stochastic, emcal.em_constant)}


def profile(n_showers: int, seed: int) -> tuple[Check, dict[str, Any]]:
    emcal = load_geometry("sphenix").calorimeters[0]
    energy = np.full(n_showers, PROFILE_GEV)
    depth, _ = em_spots(energy, emcal.critical_energy, emcal.z_eff, 64,
                        np.random.default_rng(seed))
    alpha, beta = gp_average(energy[:1], emcal.critical_energy, emcal.z_eff)
    full = emcal.depth("x0")
    sim_c, gp_c = float((depth < full).mean()), float(containment(alpha, beta, full)[0])
    sim_t, gp_t = float(depth.mean()), float(alpha[0] / beta[0])
    ok = abs(sim_c - gp_c) < 0.01 and abs(sim_t / gp_t - 1) < 0.05
    detail = (f"{PROFILE_GEV:g} GeV e- in {full:.1f} X0 (Z = {emcal.z_eff:g}): containment "
              f"{100 * sim_c:.2f} % vs {100 * gp_c:.2f} %, <t> = {sim_t:.2f} vs {gp_t:.2f} "
              "X0 (Grindhammer-Peters average profile, hep-ex/0001020)")
    return Check("calo_profile", ok, sim_c, "containment within 1 %, <t> within 5 %",
                 detail), {"depth": depth, "alpha": float(alpha[0]), "beta": float(beta[0]),
                           "full": full}


def calo_checks(n: int, seed: int) -> tuple[list[Check], dict[str, Any]]:
    """Both checks; the arrays feed ``plot``."""
    c_res, res = resolution(n, seed)
    c_prof, prof = profile(n, seed)
    return [c_res, c_prof], {"resolution": res, "profile": prof}


def plot_resolution(ax: Any, res: dict[str, Any], label: str, title: str, reference: str
                    ) -> None:
    """Fitted resolutions (``resolution`` arrays) against energy, with the fit and the
    published curve."""
    e = np.linspace(0.8, 20, 100)
    ax.plot(res["energy"], 100 * res["resolution"], "o", label=label)
    ax.plot(e, 100 * np.hypot(res["a"] / np.sqrt(e), res["b"]), label="fit")
    pa, pb = res["published"]
    ax.plot(e, 100 * np.hypot(pa / np.sqrt(e), pb), "k--", label=reference)
    ax.set(xlabel="E [GeV]", ylabel="sigma/E [%]", title=title)
    ax.legend(frameon=False)


def plot(out: Path, arrays: dict[str, Any]) -> None:
    """``calo-validation.png``: resolution against energy, longitudinal profile."""
    import matplotlib.pyplot as plt
    from scipy.stats import gamma

    res, prof = arrays["resolution"], arrays["profile"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    plot_resolution(axes[0], res, "npfm EMCal", "sPHENIX EMCal, electrons",
                    "published (1704.01461)")
    ax = axes[1]
    t = np.linspace(0, 25, 101)
    ax.hist(prof["depth"], bins=t, density=True, histtype="step", label="npfm spots")
    ax.plot(t, gamma.pdf(t, prof["alpha"], scale=1 / prof["beta"]), "k--",
            label="Grindhammer-Peters average")
    ax.axvline(prof["full"], color="C2", label="EMCal depth")
    ax.set(xlabel="depth [X0]", ylabel="1/E dE/dt", title=f"{PROFILE_GEV:g} GeV electrons")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(out / "calo-validation.png")
    plt.close(fig)
