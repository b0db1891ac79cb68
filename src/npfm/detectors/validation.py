"""Physics validation of generation + fast simulation, as a report with plots.

Checks (issue 3; reference values cited where used):
  multiplicity  e+e- -> Z -> hadrons: mean charged multiplicity within 3% of the PDG
                value 20.76 +- 0.16 (K0S and Lambda decay products counted);
  hits          a central high-pT sPHENIX track leaves 3 MVTX + 4 INTT + 48 TPC hits
                (exactly, with efficiency off; the efficiency-weighted mean otherwise);
  curvature     the fitted radius of curvature equals pT / (0.3 B) to better than 1%;
  dedx          truncated-mean TPC dE/dx of the stored hit deposits per unit path
                separates pi, K and p at 0.4 GeV, with a pion resolution as expected from
                the Allison-Cobb scaling (Ann. Rev. Nucl. Part. Sci. 30 (1980) 253);
  clas12_dis, clas12_dc  fixed-target DIS through CLAS12 (``validation_clas12``);
  calo_resolution, calo_profile  sPHENIX calorimeter cells (``validation_calo``);
  bic_resolution, bic_profile  ePIC Barrel Imaging Calorimeter (``validation_bic``);
  hi_auau200, hi_pbpb5020  central heavy-ion multiplicity (``validation_heavy_ion``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from npfm.detectors.dedx import allison_cobb, event_dedx, path_factor, row_lengths
from npfm.detectors.geometry import load_geometry
from npfm.detectors.simulation import simulate_events
from npfm.physics import generate

#: PDG: mean charged multiplicity in e+e- -> hadrons at the Z pole (shared/reference).
NCH_Z, NCH_Z_ERR = 20.76, 0.16
#: Solenoid curvature radius in cm: R = pT / (0.3 B) m with pT in GeV and B in T.
CM_PER_M = 100.0
EXACT = {"multiple_scattering": False, "energy_loss": False, "smearing": False,
         "efficiency": False, "noise": False, "decays": False, "include_objects": False}


@dataclass
class Check:
    name: str
    passed: bool
    value: float
    target: str
    detail: str

    def __post_init__(self) -> None:
        self.passed, self.value = bool(self.passed), float(self.value)  # plain JSON types


def _gun(n: int, seed: int, **options: Any) -> list[Any]:
    return list(generate("gun", n, seed=seed, **options))


def multiplicity(n_events: int, seed: int) -> tuple[Check, np.ndarray]:
    counts = np.array([int(((ev.charge != 0) & ev.final).sum()) for ev in
                       generate("ee_z", n_events, seed=seed, long_lived_decays=True)])
    mean, err = counts.mean(), counts.std(ddof=1) / np.sqrt(len(counts))
    dev = mean / NCH_Z - 1
    return Check("multiplicity", abs(dev) < 0.03, float(mean), "20.76 +- 3%",
                 f"<n_ch> = {mean:.2f} +- {err:.2f} (stat.) from {n_events} ee_z events, "
                 f"{100 * dev:+.1f}% from PDG {NCH_Z} +- {NCH_Z_ERR}"), counts


def hits_per_track(n_tracks: int, seed: int) -> tuple[Check, dict[str, np.ndarray]]:
    geometry = load_geometry("sphenix")
    gun = _gun(n_tracks, seed, pdg=211, p_range=(10.0, 10.0), eta_range=(-0.05, 0.05))
    rng = np.random.default_rng(seed)
    exact = simulate_events(gun, geometry, rng, **EXACT)
    nominal = simulate_events(gun, geometry, rng, noise=False, decays=False)
    names = ("MVTX", "INTT", "TPC")
    per = {}
    for label, events in (("exact", exact), ("nominal", nominal)):
        for sub in names:
            per[f"{label}/{sub}"] = np.array([
                int(((np.asarray(e["hit_particle"]) == 0)
                     & (np.asarray(e["hit_subsystem"]) == sub)).sum()) for e in events])
    exact_ok = all((per[f"exact/{s}"] == n).all() for s, n in zip(names, (3, 4, 48),
                                                                  strict=True))
    means = {s: per[f"nominal/{s}"].mean() for s in names}
    return Check("hits", bool(exact_ok), float(sum(means.values())), "3 + 4 + 48 = 55",
                 f"efficiency off: {'all' if exact_ok else 'NOT all'} {n_tracks} tracks "
                 "leave exactly 3 MVTX + 4 INTT + 48 TPC hits; nominal efficiency: "
                 + ", ".join(f"{s} {m:.2f}" for s, m in means.items())), per


def _circle_radius(x: np.ndarray, y: np.ndarray) -> float:
    """Algebraic (Kasa) circle fit: x^2 + y^2 + D x + E y + F = 0."""
    a = np.column_stack([x, y, np.ones_like(x)])
    d, e, f = np.linalg.lstsq(a, -(x ** 2 + y ** 2), rcond=None)[0]
    return float(np.sqrt(d ** 2 / 4 + e ** 2 / 4 - f))


def curvature(n_tracks: int, seed: int) -> tuple[Check, np.ndarray, np.ndarray]:
    geometry = load_geometry("sphenix")
    gun = _gun(n_tracks, seed, pdg=211, p_range=(0.3, 5.0), eta_range=(-0.5, 0.5))
    events = simulate_events(gun, geometry, np.random.default_rng(seed), **EXACT)
    pt, ratio = [], []
    for gen, ev in zip(gun, events, strict=True):
        mine = np.asarray(ev["hit_particle"]) == 0
        if mine.sum() < 5:
            continue
        # Only the first turn: hits before the track returns inwards (loopers).
        x, y = np.asarray(ev["hit_x"])[mine], np.asarray(ev["hit_y"])[mine]
        p_t = float(np.hypot(gen.px[0], gen.py[0]))
        expected = p_t / (0.3 * geometry.field_tesla) * CM_PER_M
        pt.append(p_t)
        ratio.append(_circle_radius(x, y) / expected)
    dev = np.abs(np.array(ratio) - 1)
    return Check("curvature", bool(dev.max() < 0.01), float(dev.max()), "< 1%",
                 f"{len(ratio)} tracks, pT 0.3-5 GeV: |R_fit / (pT/0.3B) - 1| mean "
                 f"{dev.mean():.2e}, max {dev.max():.2e}"), np.array(pt), np.array(ratio)


#: Momenta (GeV) at which the dE/dx separations are quoted.
DEDX_MOMENTA = (0.4, 0.8)
#: Largest relative deviation of the simulated pion resolution from Allison-Cobb.
DEDX_RESOLUTION_TOLERANCE = 0.4
_DEDX_SPECIES = (("pi", 211), ("K", 321), ("p", 2212), ("e", 11))


def _dedx_tracks(pdg: int, n: int, seed: int, p_range: tuple[float, float],
                 geometry: Any, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Momentum, truncated-mean TPC dE/dx (keV/cm, ``npfm.detectors.dedx``) from the
    stored ``hit_edep``, and the Allison-Cobb resolution of each gun track (|eta| < 0.5:
    the truncated mean per unit path rises with the path per pad row, by ~10 % from eta 0
    to 1, which a TPC calibrates away); tracks with fewer than 10 TPC hits dropped."""
    gun = _gun(n, seed, pdg=pdg, p_range=p_range, eta_range=(-0.5, 0.5))
    events = simulate_events(gun, geometry, rng, noise=False, decays=False,
                             include_objects=False)
    rows = row_lengths(geometry)
    p, value, reference = [], [], []
    for ev in events:
        dedx, counts = event_dedx(ev, geometry)
        if not np.isfinite(dedx[0]):
            continue
        px, py, pz = ev["particle_px"][0], ev["particle_py"][0], ev["particle_pz"][0]
        pt, mom = float(np.hypot(px, py)), float(np.sqrt(px * px + py * py + pz * pz))
        tpc = (np.asarray(ev["hit_particle"]) == 0) \
            & (np.asarray(ev["hit_subsystem"]) == "TPC")
        r = np.hypot(np.asarray(ev["hit_x"])[tpc], np.asarray(ev["hit_y"])[tpc])
        path = rows[np.asarray(ev["hit_layer"])[tpc]] * path_factor(r, pt, mom,
                                                                   geometry.field_tesla)
        p.append(mom)
        value.append(dedx[0])
        reference.append(float(allison_cobb(counts[0], path.mean())))
    return np.array(p), np.array(value), np.array(reference)


def _separation(a: np.ndarray, b: np.ndarray) -> float:
    return float(abs(a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2))


def dedx(n_tracks: int, seed: int) -> tuple[Check, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Truncated-mean (70 %) TPC dE/dx of the stored per-hit deposits ``hit_edep``,
    normalised to the path through each pad row, as in ``npfm.detectors.dedx``: pi, K, p
    and e guns at fixed momenta (``DEDX_MOMENTA``) over |eta| < 0.5, and bands over
    0.2-1.5 GeV for the plot. Passes if pi/K and K/p are separated by more than 3 sigma at
    0.4 GeV and the pion resolution is within 40 % of the Allison-Cobb expectation for its
    samples (real TPCs: ~5 % for ALICE's 159 rows, ~7-10 % for ~40-50 rows)."""
    geometry = load_geometry("sphenix")
    rng = np.random.default_rng(seed)
    at: dict[float, dict[str, np.ndarray]] = {}
    resolution = reference = float("nan")
    for momentum in DEDX_MOMENTA:
        at[momentum] = {}
        for name, pdg in _DEDX_SPECIES:
            _, value, ref = _dedx_tracks(pdg, n_tracks, seed + pdg, (momentum, momentum),
                                         geometry, rng)
            at[momentum][name] = value
            if name == "pi" and momentum == DEDX_MOMENTA[0]:
                resolution, reference = value.std() / value.mean(), float(ref.mean())
    bands: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, pdg in _DEDX_SPECIES[:3]:
        p, value, _ = _dedx_tracks(pdg, n_tracks, seed + pdg + 1, (0.2, 1.5), geometry, rng)
        bands[name] = (p, value)
    sep = {(m, f"{a}/{b}"): _separation(at[m][a], at[m][b])
           for m in DEDX_MOMENTA for a, b in (("pi", "K"), ("K", "p"))}
    worst = min(v for (m, _), v in sep.items() if m == DEDX_MOMENTA[0])
    res_ok = abs(resolution / reference - 1) < DEDX_RESOLUTION_TOLERANCE
    e_pi = at[DEDX_MOMENTA[0]]["e"].mean() / at[DEDX_MOMENTA[0]]["pi"].mean()
    detail = "; ".join(f"p = {m:.1f} GeV: " + ", ".join(
        f"{k} {v:.1f} sigma" for (mm, k), v in sep.items() if mm == m) for m in DEDX_MOMENTA)
    detail += (f"; pi resolution at 0.4 GeV {100 * resolution:.1f} % (Allison-Cobb "
               f"{100 * reference:.1f} %); e/pi {e_pi:.2f}; {n_tracks} tracks per species")
    return Check("dedx", bool(worst > 3.0 and res_ok), worst,
                 "> 3 sigma at 0.4 GeV, pi resolution within 40 % of Allison-Cobb",
                 detail), bands


def run(out: Path, seed: int = 1, scale: float = 1.0) -> list[Check]:
    """All checks; writes ``report.md``, ``report.json`` and PNG plots into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    n = max(int(200 * scale), 20)
    c_mult, counts = multiplicity(10 * n, seed)
    c_hits, per = hits_per_track(n, seed)
    c_curv, pt, ratio = curvature(n, seed)
    c_dedx, bands = dedx(n, seed)
    from npfm.detectors import validation_clas12  # it imports Check from here

    c_clas12, clas12_arrays = validation_clas12.clas12_checks(2 * n, seed)
    validation_clas12.plot(out, clas12_arrays)
    from npfm.detectors import validation_calo  # it imports Check from here

    c_calo, calo_arrays = validation_calo.calo_checks(2 * n, seed)
    validation_calo.plot(out, calo_arrays)
    from npfm.detectors import validation_bic  # it imports Check from here

    c_bic, bic_arrays = validation_bic.bic_checks(2 * n, seed)
    validation_bic.plot(out, bic_arrays)
    from npfm.detectors import validation_heavy_ion  # it imports Check from here

    c_hi, hi_arrays = validation_heavy_ion.heavy_ion_checks(max(2, round(4 * scale)), seed)
    validation_heavy_ion.plot(out, hi_arrays)
    checks = [c_mult, c_hits, c_curv, c_dedx, *c_clas12, *c_calo, *c_bic, *c_hi]

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), dpi=110)
    ax = axes[0, 0]
    ax.hist(counts, bins=np.arange(0, 61, 2), histtype="step", linewidth=1.5)
    ax.axvline(NCH_Z, color="k", ls="--", label=f"PDG {NCH_Z}")
    ax.axvline(counts.mean(), color="C1", label=f"npfm {counts.mean():.2f}")
    ax.set(xlabel="charged multiplicity", ylabel="events", title="ee_z, 91.2 GeV")
    ax.legend(frameon=False)
    ax = axes[0, 1]
    for i, sub in enumerate(("MVTX", "INTT", "TPC")):
        vals = per[f"nominal/{sub}"]
        ax.hist(vals, bins=np.arange(-0.5, 50.5), histtype="step", linewidth=1.5,
                label=f"{sub} (mean {vals.mean():.2f})", color=f"C{i}")
    ax.set(xlabel="hits per track", ylabel="tracks", yscale="log",
           title="sPHENIX, pi+ 10 GeV at eta 0")
    ax.legend(frameon=False)
    ax = axes[1, 0]
    ax.plot(pt, 100 * (ratio - 1), ".", ms=3)
    ax.axhspan(-1, 1, color="C2", alpha=0.15, label="+-1%")
    ax.set(xlabel="pT [GeV]", ylabel="R_fit / (pT/0.3B) - 1 [%]",
           title="curvature, no material or smearing")
    ax.legend(frameon=False)
    ax = axes[1, 1]
    for name, (p, v) in bands.items():
        ax.plot(p, v, ".", ms=3, label=name)
    ax.set(xlabel="p [GeV]", ylabel="truncated-mean TPC dE/dx [keV/cm]",
           yscale="log", title="dE/dx bands, sPHENIX TPC")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(out / "physics-validation.png")
    plt.close(fig)

    lines = ["# Physics validation", "", f"seed {seed}, scale {scale}", "",
             "| check | result | value | target | detail |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {c.name} | {'PASS' if c.passed else 'FAIL'} | {c.value:.4g} | {c.target} | "
              f"{c.detail} |" for c in checks]
    lines += ["", "![plots](physics-validation.png)", "", "![CLAS12](clas12-validation.png)",
              "", "![calorimeters](calo-validation.png)", "",
              "![ePIC BIC](bic-validation.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    (out / "report.json").write_text(json.dumps([asdict(c) for c in checks], indent=2))
    return checks
