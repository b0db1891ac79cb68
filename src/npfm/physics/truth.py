"""Event-level truth read from a Pythia event record and its ``RECORD`` array
(``npfm.physics.record_view``); indices in the output are array indices, i.e. Pythia
index - 1, matching ``pythia_source.convert``."""

from __future__ import annotations

from typing import Any

import numpy as np

_Z = 23  # PDG id of the gamma*/Z0 in Pythia's f fbar -> gamma*/Z0 process
_ELECTRON = 11


def _entries(record: np.ndarray, pdg_abs: int, status_abs: int) -> list[int]:
    """Pythia indices of the entries with |id| = ``pdg_abs`` and |status| = ``status_abs``."""
    found = (np.abs(record["id"]) == pdg_abs) & (np.abs(record["status"]) == status_abs)
    return np.flatnonzero(found).tolist()


def quark_flavour(event: Any, record: np.ndarray) -> dict[str, Any]:
    """``truth_quark_flavour`` (1..5 = d,u,s,c,b) of the single hard gamma*/Z0 -> q qbar.

    Empty when the hard process has no single gamma*/Z0 decaying to quarks (e.g. WW, ZZ).
    """
    bosons = _entries(record, _Z, 22)
    if len(bosons) != 1:
        return {}
    last_copy = event[event[bosons[0]].iBotCopyId()]  # after recoil copies from ISR
    flavour = event[last_copy.daughter1()].idAbs()
    return {"truth_quark_flavour": flavour} if 1 <= flavour <= 5 else {}


def _dot(a: Any, b: Any) -> float:
    return float(a.e() * b.e() - a.px() * b.px() - a.py() * b.py() - a.pz() * b.pz())


def dis_kinematics(event: Any, record: np.ndarray) -> dict[str, Any]:
    """DIS truth x, Q^2 (GeV^2), y and the scattered lepton's array index.

    Kinematics use the beams and the outgoing lepton of the hard process:
    Q2 = -(k - k')^2, y = P.q / P.k, x = Q2 / (2 P.q). This is the generated (Born-level)
    scattering, so Q2 >= PhaseSpace:Q2Min; the final copy of that lepton, which the
    detector sees, can differ slightly where it took recoil in the QED shower.
    ``truth_scattered_lepton`` is that final copy.
    """
    beams = [event[1], event[2]]
    lepton_beam = next(b for b in beams if b.idAbs() == _ELECTRON)
    hadron_beam = next(b for b in beams if b.idAbs() != _ELECTRON)
    scattered = event[_entries(record, _ELECTRON, 23)[0]]
    k, kp, big_p = lepton_beam.p(), scattered.p(), hadron_beam.p()
    q = k - kp
    q2 = -_dot(q, q)
    pq = _dot(big_p, q)
    return {"truth_q2": q2, "truth_y": pq / _dot(big_p, k), "truth_x": q2 / (2.0 * pq),
            "truth_scattered_lepton": scattered.iBotCopyId() - 1}
