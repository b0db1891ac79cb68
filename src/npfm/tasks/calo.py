"""Electron/pion separation from a track and its calorimeter cluster.

Per event, the track is the first primary charged particle of |PDG id| 11 or 211 (the
particle of a single-particle gun event) with at least ``MIN_TRACK_HITS`` hits; hits
belong to it by their truth particle, as in the other per-track tasks. Its helix is
fitted to those hits (``npfm.tasks.trackfit``) and projected to the front face of the
first (electromagnetic) calorimeter. The matched cluster is the first calorimeter's
cells within ``EM_WINDOW`` tower pitches of the projection; the track is matched when
that holds a cell. The hadronic energy is that of the other calorimeters' cells within
``HAD_WINDOW`` of their own tower pitch. Label: 1 for an electron, 0 for a charged pion,
IGNORE (no such track, or no matched cluster).

Shower-shape features (``SHOWER_FEATURES``) of the classical baseline:

- e_over_p: cluster energy / fitted momentum (electrons ~1, pions mostly MIP-like);
- had_over_em: hadronic energy / cluster energy;
- width: energy-weighted RMS distance of the cluster's cells from their centroid in
  (eta, phi), in EM tower pitches;
- core: the highest cell energy / cluster energy;
- n_cells: cells in the cluster; log10_p: log10 of the fitted momentum (GeV).

``rejection_at_efficiency``: the task's metric, background (pion) rejection 1 / eps_pi at
the threshold that keeps 90% of the signal (electrons).
"""

from __future__ import annotations

import math

import numpy as np

from npfm.detectors import load_geometry
from npfm.detectors.tables import Calorimeter
from npfm.events import vocabulary
from npfm.events.loader import IGNORE_INDEX
from npfm.tasks.data import TaskEvent
from npfm.tasks.trackfit import arc_length, fitted_momentum, helix_fit

MIN_TRACK_HITS = 10
#: Cluster windows in tower pitches: 2.5 EMCal towers hold an electromagnetic shower
#: (90% within one Moliere radius, ~1 sPHENIX EMCal tower; PDG Review, "Passage of
#: particles through matter", sec. 34.5) plus the projection error; 1.5 HCal towers.
EM_WINDOW, HAD_WINDOW = 2.5, 1.5
SHOWER_FEATURES = ("e_over_p", "had_over_em", "width", "core", "n_cells", "log10_p")
ELECTRON, PION = 11, 211


def pitch(calo: Calorimeter) -> tuple[float, float]:
    """(d eta, d phi rad) of one tower of ``calo``."""
    return 2 * calo.eta_max / calo.n_eta, 2 * math.pi / calo.n_phi


def the_track(event: TaskEvent) -> int | None:
    """Particle index of the event's track (module docstring), or None."""
    p = event.particles
    pdg = np.abs(p.get("particle_pdg", np.zeros(0)))
    primary = p.get("particle_primary", np.ones(len(pdg))) == 1
    particle = event.hit("hit_particle")
    for i in np.flatnonzero(np.isin(pdg, (ELECTRON, PION)) & primary):
        if int(np.sum(particle == i)) >= MIN_TRACK_HITS:
            return int(i)
    return None


def project(x: np.ndarray, y: np.ndarray, z: np.ndarray, radius: float
            ) -> tuple[float, float] | None:
    """(eta, phi) where the helix through hits (x, y, z) (cm) crosses ``radius`` (cm): of
    the circle's two crossings, the one nearer the outermost hit; None if it never does."""
    cx, cy, r_circle, tan_dip, z0 = helix_fit(x, y, z)
    d = math.hypot(cx, cy)
    if not (d > 0 and np.isfinite(tan_dip)):
        return None
    a = (radius ** 2 - r_circle ** 2 + d ** 2) / (2 * d)
    h2 = radius ** 2 - a ** 2
    if h2 < 0:
        return None
    h = math.sqrt(h2)
    ux, uy = cx / d, cy / d
    points = [(a * ux - s * h * uy, a * uy + s * h * ux) for s in (1, -1)]
    last = int(np.argmax(np.hypot(x, y)))
    px, py = min(points, key=lambda q: math.hypot(q[0] - x[last], q[1] - y[last]))
    z_calo = z0 + tan_dip * float(arc_length(np.array([radius]), r_circle)[0])
    return math.asinh(z_calo / radius), math.atan2(py, px)


def _distance(eta: np.ndarray, phi: np.ndarray, eta0: float, phi0: float,
              calo: Calorimeter) -> np.ndarray:
    """Distance of (eta, phi) from (eta0, phi0) in tower pitches of ``calo``."""
    d_eta, d_phi = pitch(calo)
    dphi = np.angle(np.exp(1j * (phi - phi0)))
    return np.asarray(np.hypot((eta - eta0) / d_eta, dphi / d_phi))


def shower_features(event: TaskEvent) -> tuple[np.ndarray, int]:
    """(``SHOWER_FEATURES`` (NaN where undefined), label: 1 e, 0 pi, IGNORE) of the
    event's track and its cluster (computed once per event)."""
    if "shower" not in event.derived:
        event.derived["shower"] = _shower(event)
    features, label = event.derived["shower"]
    return features.copy(), label


def _shower(event: TaskEvent) -> tuple[np.ndarray, int]:
    missing = np.full(len(SHOWER_FEATURES), np.nan)
    track = the_track(event)
    if track is None or event.cells is None:
        return missing, IGNORE_INDEX
    geo = load_geometry(str(event.info["geometry_id"]))
    if not geo.calorimeters:
        return missing, IGNORE_INDEX
    mine = event.hit("hit_particle") == track
    x, y, z = (event.hit(f"hit_{c}").astype(np.float64)[mine] for c in "xyz")
    field = float(event.info.get("magnetic_field") or geo.field_tesla)
    _, p, _ = fitted_momentum(x, y, z, field)
    em = geo.calorimeters[0]
    where = project(x, y, z, em.r_inner)
    if where is None or not np.isfinite(p) or p <= 0:
        return missing, IGNORE_INDEX
    cells = event.cells.fields
    cx, cy, cz = (cells[f"cell_{c}"].numpy().astype(np.float64) for c in "xyz")
    energy = cells["cell_energy"].numpy().astype(np.float64)
    eta, phi = np.arcsinh(cz / np.hypot(cx, cy)), np.arctan2(cy, cx)
    sub = cells["cell_subsystem"].numpy()
    code = {c.subsystem: vocabulary.code("subsystems", c.subsystem) for c in geo.calorimeters}
    in_em = (sub == code[em.subsystem]) & (_distance(eta, phi, *where, em) < EM_WINDOW)
    if not in_em.any():
        return missing, IGNORE_INDEX
    had = sum(float(energy[(sub == code[c.subsystem])
                           & (_distance(eta, phi, *where, c) < HAD_WINDOW)].sum())
              for c in geo.calorimeters[1:])
    e = energy[in_em]
    total = float(e.sum())
    w = np.clip(e, 0, None)
    w = w / w.sum() if w.sum() > 0 else np.full(len(e), 1 / len(e))
    eta0 = float(np.sum(w * eta[in_em]))
    phi0 = float(np.angle(np.sum(w * np.exp(1j * phi[in_em]))))
    width = math.sqrt(float(np.sum(w * _distance(eta[in_em], phi[in_em], eta0, phi0, em) ** 2)))
    pdg = abs(int(event.particles["particle_pdg"][track]))
    return (np.array([total / p, had / total if total > 0 else np.nan, width,
                      float(e.max()) / total if total > 0 else np.nan, float(len(e)),
                      math.log10(p)]), int(pdg == ELECTRON))


def electron_pion_target(event: TaskEvent) -> np.ndarray:
    """(1,) label of the event's matched track: 1 electron, 0 pion, IGNORE otherwise."""
    return np.array([shower_features(event)[1]])


def passing_at_efficiency(y: np.ndarray, score: np.ndarray, efficiency: float = 0.9
                          ) -> int | None:
    """Background events (y == 0) passing the highest score threshold that keeps at least
    ``efficiency`` of the signal (y == 1; scores >= threshold pass); None without both
    classes."""
    signal, background = score[y == 1], score[y == 0]
    if not len(signal) or not len(background):
        return None
    drop = math.floor((1 - efficiency) * len(signal) + 1e-9)  # signal below the cut
    return int(np.sum(background >= np.sort(signal)[drop]))


def rejection_at_efficiency(y: np.ndarray, score: np.ndarray, efficiency: float = 0.9
                            ) -> float:
    """Background rejection 1 / eps_b at that threshold (``passing_at_efficiency``); with
    no background event passing, the number of background events (a lower bound). NaN
    without both classes."""
    passed = passing_at_efficiency(y, score, efficiency)
    return float("nan") if passed is None else int(np.sum(y == 0)) / max(passed, 1)
