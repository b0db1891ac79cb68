"""Physics checks of heavy ions at TPC level (auau200 through sPHENIX, pbpb5020 through
ALICE), for ``npfm validate-physics``.

  hi_<config>  the mean final charged-particle density dN_ch/deta at |eta| < 0.5 of
               central (0-5 %, ``CENTRAL_B_MAX_FM``) Angantyr events agrees with the
               measured value (``CENTRAL_DNDETA``: PHENIX for Au+Au, ALICE for Pb+Pb)
               within 15 % plus two standard errors (of the events' mean and of the
               measurement, in quadrature): Angantyr has no collective effects and runs
               low (Au+Au about -5 to -10 %, Pb+Pb about -10 %, docs/simulation.md), and
               a few central events fluctuate by ~15 % each. The detail also gives the
               TPC hits of the first event through the detector's fast simulation
               (trackers only), the occupancy that the windowed loader and model take.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from npfm.detectors.simulation import simulate_events
from npfm.detectors.validation import Check
from npfm.physics import generate
from npfm.physics.heavy_ion import CENTRAL_B_MAX_FM, CENTRAL_DNDETA, dndeta_mid
from npfm.physics.record import GeneratedEvent

#: Detector of each heavy-ion configuration; the check's model tolerance (relative).
SYSTEMS = {"auau200": "sphenix", "pbpb5020": "alice"}
TOLERANCE = 0.15


def heavy_ion_checks(n_events: int, seed: int
                     ) -> tuple[list[Check], dict[str, dict[str, np.ndarray]]]:
    """One check per system from ``n_events`` central events each; arrays for the plot
    (per system: eta of the charged final particles of all events, and dN/deta)."""
    checks, arrays = [], {}
    for name, detector in SYSTEMS.items():
        events = list(generate(name, n_events, seed=seed, b_max_fm=CENTRAL_B_MAX_FM[name]))
        values = np.array([dndeta_mid(e) for e in events])
        reference, error = CENTRAL_DNDETA[name]
        ratio = float(values.mean() / reference)
        sem = float(values.std(ddof=1) / np.sqrt(len(values)))
        allowed = TOLERANCE * reference + 2 * float(np.hypot(sem, error))
        rng = np.random.default_rng(seed)
        first = simulate_events(events[:1], detector, rng, include_objects=False,
                                calorimeter=False)[0]
        tpc = int((np.asarray(first["hit_subsystem"]).astype(str) == "TPC").sum())
        checks.append(Check(
            f"hi_{name}", abs(values.mean() - reference) < allowed, ratio,
            f"central dN_ch/deta within {TOLERANCE:.0%} + 2 s.e. of {reference:.0f} ± "
            f"{error:.0f}", f"{values.mean():.0f} ± {sem:.0f} from "
            f"{len(values)} events (ratio {ratio:.2f}); {tpc:,} TPC hits in the first "
            f"through {detector}"))
        eta = np.concatenate([_eta(e) for e in events])
        arrays[name] = {"eta": eta, "dndeta": values}
    return checks, arrays


def _eta(event: GeneratedEvent) -> np.ndarray:
    charged = event.final & (event.charge != 0)
    px, py, pz = event.px[charged], event.py[charged], event.pz[charged]
    return np.arcsinh(pz / np.maximum(np.hypot(px, py), 1e-12))


def plot(out: Path, arrays: dict[str, dict[str, np.ndarray]]) -> None:
    """dN_ch/deta of the central events of each system against the measured value."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(arrays), figsize=(11, 4), dpi=110)
    for ax, (name, a) in zip(np.atleast_1d(axes), arrays.items(), strict=True):
        n = len(a["dndeta"])
        edges = np.linspace(-5, 5, 41)
        counts, _ = np.histogram(a["eta"], edges)
        ax.stairs(counts / n / np.diff(edges), edges, linewidth=1.5, label="Angantyr, 0-5 %")
        reference, error = CENTRAL_DNDETA[name]
        ax.errorbar([0.0], [reference], yerr=[error], fmt="ko", label="measured, |eta| < 0.5")
        ax.set(xlabel="eta", ylabel="dN_ch/deta", title=f"{name} ({n} central events)")
        ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(out / "heavy-ion-validation.png")
    plt.close(fig)
