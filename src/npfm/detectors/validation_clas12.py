"""Physics checks of CLAS12 fixed-target DIS (clas12_ep through the clas12 geometry).

  clas12_dis  the inclusive DIS variables computed from the scattered electron alone,
              Q^2 = 4 E E' sin^2(theta/2), nu = E - E', x = Q^2 / (2 M nu), with E the beam
              energy on a proton at rest, equal the generator's Born-level truth (relative
              1e-3) in at least 95 % of the events (in the others the final electron took
              recoil from initial-state radiation, Pythia's global ISR recoil), every event
              has W > w_min (2 GeV) and its vertex in the 5 cm target cell;
  clas12_dc   with efficiency, smearing and material off, a scattered electron inside the
              Forward Detector acceptance (6-34 deg, 1 deg inside 5-35 deg: the DC disks
              reach 40 deg, the solenoid absorber stops tracks above ~36 deg) leaves exactly
              3 regions x 2 superlayers x 6 layers = 36 DC hits on a straight line (no field
              beyond the solenoid: line-fit RMS < 1 um), one below 4 or above 42 deg none
              (1-2 deg margins: the 5 cm target and the solenoid bend move the cone edges).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from npfm.detectors.geometry import load_geometry
from npfm.detectors.simulation import simulate_events
from npfm.detectors.validation import EXACT, Check
from npfm.physics import config_options, generate

#: Proton mass (GeV), PDG 2024: 938.27208816 MeV.
PROTON_MASS = 0.93827208816
#: Scattered-electron polar angles (deg) fully inside / outside the forward acceptance.
DC_WINDOW_DEG, DC_OUTSIDE_DEG = (6.0, 34.0), (4.0, 42.0)
MATCHED_MIN = 0.95  # fraction of events whose e' reproduces the Born kinematics
DC_LAYERS = 36  # 3 regions x 2 superlayers x 6 layers


def _electron(event: Any) -> tuple[int, np.ndarray]:
    i = int(event.info["truth_scattered_lepton"])
    return i, np.array([event.px[i], event.py[i], event.pz[i]])


def electron_kinematics(p: np.ndarray, beam_energy: float) -> tuple[float, float, float]:
    """Q^2 (GeV^2), x and W (GeV) from the scattered electron's momentum ``p`` (GeV)."""
    e_out = float(np.linalg.norm(p))
    theta = float(np.arccos(p[2] / e_out))
    q2 = 4.0 * beam_energy * e_out * np.sin(0.5 * theta) ** 2
    nu = beam_energy - e_out
    return q2, q2 / (2.0 * PROTON_MASS * nu), float(np.sqrt(PROTON_MASS ** 2
                                                            + 2 * PROTON_MASS * nu - q2))


def _line_rms(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """RMS distance (cm) of points from their best-fit 3D line."""
    pts = np.column_stack([x, y, z])
    centred = pts - pts.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    resid = centred - np.outer(centred @ direction, direction)
    return float(np.sqrt((resid ** 2).sum(axis=1).mean()))


def clas12_checks(n_events: int, seed: int) -> tuple[list[Check], dict[str, np.ndarray]]:
    """Both checks on ``n_events`` clas12_ep events; returns them and the plotted arrays."""
    options = config_options("clas12_ep")
    beam, w_min = options["beam_energy"], options["w_min"]
    z_lo = options["target_centre_cm"] - 0.5 * options["target_length_cm"]
    z_hi = z_lo + options["target_length_cm"]
    events = list(generate("clas12_ep", n_events, seed=seed))
    exact = simulate_events(events, load_geometry("clas12"), np.random.default_rng(seed),
                            **EXACT)
    rows = []
    for ev, sim in zip(events, exact, strict=True):
        i, p = _electron(ev)
        q2, x, _ = electron_kinematics(p, beam)
        mine = (np.asarray(sim["hit_particle"]) == i) & (np.asarray(sim["hit_subsystem"])
                                                          == "DC")
        rms = _line_rms(*(np.asarray(sim[k])[mine] for k in ("hit_x", "hit_y", "hit_z"))) \
            if mine.sum() > 2 else 0.0
        vz = ev.vz[ev.primary]
        in_target = bool(((vz >= z_lo - 1e-6) & (vz <= z_hi + 1e-6)).all())
        q2_t, x_t = ev.info["truth_q2"], ev.info["truth_x"]
        w_born = np.sqrt(PROTON_MASS ** 2 + q2_t * (1 / x_t - 1))
        rows.append((q2 / q2_t - 1, x / x_t - 1, w_born,
                     np.degrees(np.arccos(p[2] / np.linalg.norm(p))), mine.sum(), rms,
                     in_target, q2, x))
    r = np.array(rows, dtype=np.float64)
    matched = np.abs(r[:, :2]).max(axis=1) < 1e-3
    fraction = float(matched.mean())
    w_born = r[:, 2]
    dis_ok = fraction >= MATCHED_MIN and w_born.min() > w_min and bool(r[:, 6].all())
    c_dis = Check("clas12_dis", dis_ok, fraction, "Q2, x from e' within 1e-3 in >= 95 %; "
                  "W > 2 GeV", f"{n_events} clas12_ep events: e' reproduces the Born Q2 and x "
                  f"in {100 * fraction:.1f} %; Born W min {w_born.min():.3f} GeV; "
                  f"Q2 {r[:, 7].min():.2f}-{r[:, 7].max():.2f} GeV^2, "
                  f"x {r[:, 8].min():.3f}-{r[:, 8].max():.3f}; vertices in the target cell: "
                  f"{'all' if r[:, 6].all() else 'NOT all'}")
    theta, n_dc = r[:, 3], r[:, 4]
    inside = (theta > DC_WINDOW_DEG[0]) & (theta < DC_WINDOW_DEG[1])
    outside = (theta < DC_OUTSIDE_DEG[0]) | (theta > DC_OUTSIDE_DEG[1])
    rms = float(r[inside, 5].max()) if inside.any() else np.inf
    dc_ok = bool((n_dc[inside] == DC_LAYERS).all() and (n_dc[outside] == 0).all()
                 and rms < 1e-4 and inside.any())
    c_dc = Check("clas12_dc", dc_ok, rms, "36 DC hits in 6-34 deg, straight (RMS < 1 um)",
                 f"efficiency off: {int(inside.sum())} electrons at 6-34 deg leave "
                 f"{'exactly' if (n_dc[inside] == DC_LAYERS).all() else 'NOT always'} 36 DC "
                 f"hits, {int(outside.sum())} below 4 or above 42 deg "
                 f"{'none' if (n_dc[outside] == 0).all() else 'SOME'}; max line-fit RMS "
                 f"{1e4 * rms:.2g} um")
    return [c_dis, c_dc], {"q2": r[:, 7], "x": r[:, 8], "theta": theta}


def plot(out: Path, arrays: dict[str, np.ndarray]) -> None:
    """Q^2 vs x of the generated events, and the scattered electron's polar angle."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    ax = axes[0]
    ax.plot(arrays["x"], arrays["q2"], ".", ms=3)
    x = np.linspace(0.05, 0.8, 100)
    ax.plot(x, (4.0 - PROTON_MASS ** 2) * x / (1 - x), "k--", label="W = 2 GeV")
    ax.set(xlabel="x", ylabel="Q$^2$ [GeV$^2$]", title="clas12_ep, e- 10.6 GeV on p at rest")
    ax.legend(frameon=False)
    ax = axes[1]
    ax.hist(arrays["theta"], bins=np.arange(0, 46, 1), histtype="step", linewidth=1.5)
    for edge in (5, 35):
        ax.axvline(edge, color="k", ls="--")
    ax.set(xlabel="scattered electron theta [deg]", ylabel="events",
           title="Forward Detector acceptance 5-35 deg")
    fig.tight_layout()
    fig.savefig(out / "clas12-validation.png")
    plt.close(fig)
