"""ePIC Barrel Imaging Calorimeter checks of ``npfm validate-physics``.

  bic_resolution  electron guns (1, 2, 4, 8, 16 GeV at |eta| < 0.3) through the full ePIC
                  simulation (two-ended photo-statistics included); the spread of the
                  Pb/ScFi cell sum fitted to sigma/E = a/sqrt(E) (+) b against the geometry
                  file's published Pb/ScFi values (GlueX BCAL, arXiv:1801.03088:
                  5.2 %/sqrt(E) (+) 3.6 %): a within 15 %, b within 0.02;
  bic_profile     the mean energy fraction in each of the 12 Pb/ScFi layers of 4 GeV
                  electrons (cell_layer, across the imaging gaps) against Grindhammer and
                  Peters' average profile (arXiv:hep-ex/0001020) integrated over each
                  layer's depth in X0: every layer within 0.02 of E, and the containment
                  (mean response) within 2 %; plus the mean imaging-layer hits per
                  electron (reported);
  bic_z           the shower z of the same electrons from the two ends' waveforms alone:
                  per cell z = (z_end0 + z_end1 - lambda_att ln(N_0 / N_1)) / 2 with N_j
                  the pedestal-subtracted sample sums over the gain, energy-weighted,
                  against the electron's z at the showers' mean radius: bias within 1 cm
                  and pulls against the photo-statistics error
                  (lambda_att / 2) sqrt(1/N_0 + 1/N_1) of width 0.8-1.25.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from npfm.detectors.geometry import load_geometry
from npfm.detectors.showers import containment, gp_average
from npfm.detectors.simulation import simulate_events
from npfm.detectors.tables import FibreReadout
from npfm.detectors.validation import Check, _gun
from npfm.detectors.validation_calo import fit_resolution, plot_resolution
from npfm.detectors.waveforms import waveform_energy
from npfm.events.errors import NpfmError

ENERGIES_GEV = (1.0, 2.0, 4.0, 8.0, 16.0)
PROFILE_GEV = 4.0
SCFI, IMAGING = "EcalBarrelScFi", "EcalBarrelImaging"


def _layer_edges() -> np.ndarray:
    """Depth (X0) of the BIC's Pb/ScFi layer boundaries, gaps excluded."""
    calos = [c for c in load_geometry("epic").calorimeters if c.subsystem == SCFI]
    return np.concatenate([[0.0], np.cumsum([c.depth("x0") for c in calos])])


def bic_checks(n_events: int, seed: int) -> tuple[list[Check], dict[str, Any]]:
    """Both checks from one set of electron guns; the arrays feed ``plot``."""
    geo = load_geometry("epic")
    scfi = next(c for c in geo.calorimeters if c.subsystem == SCFI)
    fibre = scfi.waveform
    if fibre is None:
        raise NpfmError(f"{geo.path}: calorimeters", "the BIC has no waveforms block",
                        "give its Pb/ScFi entries their two-ended readout")
    n_layers = len(_layer_edges()) - 1
    res, mean, layers, imaging = [], [], np.zeros(n_layers), 0.0
    for i, e in enumerate(ENERGIES_GEV):
        events = _gun(n_events, seed + i, pdg=11, p_range=(e, e), eta_range=(-0.3, 0.3))
        rows = simulate_events(events, geo, np.random.default_rng([seed, i]),
                               include_objects=False, waveforms=e == PROFILE_GEV)
        sums = np.array([r["cell_energy"][r["cell_subsystem"] == SCFI].sum() for r in rows])
        mean.append(sums.mean())
        res.append(sums.std(ddof=1) / sums.mean())
        if e == PROFILE_GEV:
            for r in rows:
                layers += np.bincount(r["cell_layer"], weights=r["cell_energy"],
                                      minlength=n_layers)[:n_layers]
            layers /= len(rows) * e
            imaging = float(np.mean([np.sum(r["hit_subsystem"] == IMAGING) for r in rows]))
            z_diff, z_err = _end_z(rows, fibre)
    energies, sig = np.array(ENERGIES_GEV), np.array(res)
    a, b = fit_resolution(energies, sig)
    ok = abs(a / scfi.em_stochastic - 1) < 0.15 and abs(b - scfi.em_constant) < 0.02
    c_res = Check("bic_resolution", ok, a, "a within 15 %, b within 0.02 of the geometry file",
                  f"ePIC BIC Pb/ScFi electrons: fitted {100 * a:.1f} %/sqrt(E) (+) "
                  f"{100 * b:.1f} % vs published {100 * scfi.em_stochastic:.1f} %/sqrt(E) (+) "
                  f"{100 * scfi.em_constant:.1f} % (GlueX BCAL, arXiv:1801.03088); response "
                  + ", ".join(f"{m / e:.3f}" for m, e in zip(mean, ENERGIES_GEV, strict=True))
                  + f" at {', '.join(f'{e:g}' for e in ENERGIES_GEV)} GeV")
    edges = _layer_edges()
    alpha, beta = gp_average(np.array([PROFILE_GEV]), scfi.critical_energy, scfi.z_eff)
    gp = np.diff([float(containment(alpha, beta, x)[0]) for x in edges])
    sim_c, gp_c = float(layers.sum()), float(gp.sum())
    worst = float(np.abs(layers - gp).max())
    c_prof = Check("bic_profile", bool(worst < 0.02 and abs(sim_c / gp_c - 1) < 0.02), worst,
                   "each layer within 0.02 of E, containment within 2 %",
                   f"{PROFILE_GEV:g} GeV e- in 12 Pb/ScFi layers ({edges[-1]:.1f} X0): largest "
                   f"layer difference {worst:.3f} of E; containment {100 * sim_c:.1f} % vs "
                   f"{100 * gp_c:.1f} % (Grindhammer-Peters average profile, hep-ex/0001020); "
                   f"{imaging:.0f} imaging-layer hits per electron")
    pulls = z_diff / z_err
    bias, width = float(z_diff.mean()), float(pulls.std(ddof=1))
    c_z = Check("bic_z", bool(abs(bias) < 1.0 and 0.8 < width < 1.25), float(z_diff.std()),
                "bias within 1 cm, pull width 0.8-1.25",
                f"{PROFILE_GEV:g} GeV e-: shower z from the two ends' waveforms, resolution "
                f"{z_diff.std(ddof=1):.1f} cm, bias {bias:+.2f} cm, pull width {width:.2f} "
                f"against photo-statistics (attenuation length {fibre.attenuation:g} cm)")
    return [c_res, c_prof, c_z], {"energy": energies, "resolution": sig, "a": a, "b": b,
                             "published": (scfi.em_stochastic, scfi.em_constant),
                             "layers": layers, "gp": gp, "edges": edges, "z_diff": z_diff}


def _end_z(rows: list[dict[str, Any]], fibre: FibreReadout) -> tuple[np.ndarray, np.ndarray]:
    """Per event: reconstructed minus true shower z (cm), and its photo-statistics error."""
    diff, err = [], []
    for r in rows:
        pe = waveform_energy(r["sample_adc"], r["waveform_n_samples"], r["waveform_pedestal"],
                             r["waveform_gain"]).reshape(-1, 2)
        ok = (pe > 1).all(axis=1)  # both ends above a photo-electron
        cell, pe = r["waveform_cell"][::2][ok], pe[ok]
        w = r["cell_energy"][cell] / r["cell_energy"][cell].sum()
        z = 0.5 * (fibre.z_end0 + fibre.z_end1 - fibre.attenuation * np.log(pe[:, 0] / pe[:, 1]))
        sigma = 0.5 * fibre.attenuation * np.sqrt(1 / pe[:, 0] + 1 / pe[:, 1])
        radius = np.sum(w * np.hypot(r["cell_x"][cell], r["cell_y"][cell]))
        pt = np.hypot(r["particle_px"][0], r["particle_py"][0])
        diff.append(np.sum(w * z) - (r["particle_vz"][0] + r["particle_pz"][0] / pt * radius))
        err.append(np.sqrt(np.sum((w * sigma) ** 2)))
    return np.array(diff), np.array(err)


def plot(out: Path, arrays: dict[str, Any]) -> None:
    """``bic-validation.png``: resolution against energy, energy per Pb/ScFi layer, z from
    the two ends."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4), dpi=110)
    plot_resolution(axes[0], arrays, "npfm BIC", "ePIC BIC, electrons",
                    "GlueX BCAL (1801.03088)")
    ax = axes[1]
    mid = 0.5 * (arrays["edges"][1:] + arrays["edges"][:-1])
    ax.step(mid, arrays["layers"], where="mid", label="npfm cells per layer")
    ax.plot(mid, arrays["gp"], "k.", label="Grindhammer-Peters average")
    ax.set(xlabel="layer depth [X0]", ylabel="fraction of E",
           title=f"{PROFILE_GEV:g} GeV electrons, Pb/ScFi layers")
    ax.legend(frameon=False)
    ax = axes[2]
    ax.hist(arrays["z_diff"], bins=40, histtype="step")
    ax.set(xlabel="z from the two ends - true z [cm]", ylabel="events",
           title=f"{PROFILE_GEV:g} GeV electrons, end asymmetry")
    fig.tight_layout()
    fig.savefig(out / "bic-validation.png")
    plt.close(fig)
