"""CLAS12 HIPO files -> the event model, read with ``hipopy`` (its C++ ``hipopybind``).

Banks mapped (layouts as in the CLAS12 bank definitions, coatjava ``etc/bankdefs/hipo4``;
momenta GeV, lengths cm, times ns):

- ``REC::Particle`` (group 300, item 31: pid, px, py, pz, vx, vy, vz, vt, charge, beta,
  chi2pid, status) -> reconstructed objects: ``object_px/py/pz``, ``object_charge``,
  ``object_z0`` = vz, ``object_type`` from pid (11 electron, 13 muon, 22 photon, other
  neutrals neutral_hadron, other charged charged_track) and ``object_mass`` the pid's
  mass (CLAS12 writes deuterons as 45, GEANT3's code), else the pion's for a charged
  particle and 0 for a neutral one;
- ``MC::Particle`` (group 40, item 2: pid, px, py, pz, vx, vy, vz, vt) -> truth particles
  (``particle_charge`` stays null: the bank has none); a file with it is ``simulated``;
- ``RUN::config`` (group 10000, item 11: run, event, ..., solenoid) -> run and event
  numbers, ``magnetic_field`` = 5 T x |solenoid scale| (nominal 5 T, Burkert et al., NIM A
  959 (2020) 163419). Without it, ``run`` is the option and events count from 0.

Not mapped: hits. CLAS12's ADC/TDC banks (``BST::adc``, ``DC::tdc``, ...) give channels
(sector, layer, strip or wire), not positions, which need the CLAS12 geometry service.

hipopybind aborts the whole process on a damaged file (a failed C++ assertion) and exits
when asked for a bank the file lacks, so the file is read in a child process that sends
batches of events back; a child that dies becomes a one-line error naming the file.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from npfm.events.errors import NpfmError
from npfm.formats.edm4hep import MASS_GEV

BANKS = ("RUN::config", "REC::Particle", "MC::Particle")
MAGIC = b"HIPO"  # first four bytes of a HIPO (version 4) file
#: Nominal CLAS12 solenoid field on the axis, T (NIM A 959 (2020) 163419).
SOLENOID_TESLA = 5.0
_PION_MASS = MASS_GEV[211]
#: pid -> mass (GeV): the PDG masses, and CLAS12's deuteron (pid 45; PDG 2024 1875.61294 MeV).
_MASSES = {**MASS_GEV, 22: 0.0, 45: 1.87561294}
_TYPES = {11: "electron", 13: "muon", 22: "photon"}
_FIX = "check the file (e.g. hipo-utils -info), or copy it again from its source"


def _send_batches(path: str, step: int, conn: Connection) -> None:
    """Child process: the banks present, then batches of events, then None. Its output
    (the C++ reader's messages and assertion failures) is discarded: the parent reports."""
    import hipopy.hipopy as hipopy

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)

    present = [b for b in BANKS if hipopy.open(path).hasBank(b)]
    conn.send(present)
    if {"REC::Particle", "MC::Particle"} & set(present):
        for batch in hipopy.iterate([path], banks=present, step=step):
            conn.send(dict(batch))
    conn.send(None)
    conn.close()


def read_clas12_hipo(path: Path | str, *, run: int = 0, step: int = 500
                     ) -> Iterator[dict[str, Any]]:
    """Event mappings of one CLAS12 HIPO file (``run``: run number when the file has no
    ``RUN::config`` bank; ``step``: events per batch read)."""
    path = Path(path)
    if not path.is_file():
        raise NpfmError(str(path), "no such file", "give the path of a CLAS12 .hipo file")
    with path.open("rb") as f:
        magic = f.read(len(MAGIC))
    if magic != MAGIC:
        raise NpfmError(str(path), f"not a HIPO file (starts with {magic!r}, not {MAGIC!r})",
                        "give a CLAS12 HIPO (version 4) file")
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_send_batches, args=(str(path), step, sender), daemon=True)
    child.start()
    sender.close()
    events = 0
    try:
        present = receiver.recv()
        if not {"REC::Particle", "MC::Particle"} & set(present):
            raise NpfmError(str(path), "no REC::Particle or MC::Particle bank",
                            "give a reconstructed (REC::Particle) or simulated "
                            "(MC::Particle) CLAS12 file")
        simulated = "MC::Particle" in present
        while (batch := receiver.recv()) is not None:
            for row in _rows(batch, simulated, run, events):
                events += 1
                yield row
    except EOFError:
        child.join()
        raise NpfmError(str(path), f"corrupt or truncated HIPO file (the hipopy reader "
                        f"stopped with exit code {child.exitcode} after {events} events)",
                        _FIX) from None
    finally:
        receiver.close()
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()


def _rows(batch: dict[str, list[Any]], simulated: bool, run: int, first: int
          ) -> Iterator[dict[str, Any]]:
    """Event mappings of one batch (``{"BANK_column": [per-event lists]}``)."""
    def col(bank: str, name: str, k: int) -> np.ndarray:
        return np.asarray(batch[f"{bank}_{name}"][k])

    n_events = len(next(iter(batch.values())))
    for k in range(n_events):
        row: dict[str, Any] = {"facility": "CEBAF", "experiment": "CLAS12", "run": run,
                               "event": first + k,
                               "data_level": "simulated" if simulated else "real"}
        if "RUN::config_run" in batch and len(batch["RUN::config_run"][k]):
            row["run"] = int(col("RUN::config", "run", k)[0])
            row["event"] = int(col("RUN::config", "event", k)[0])
            row["magnetic_field"] = SOLENOID_TESLA * abs(float(col("RUN::config",
                                                                   "solenoid", k)[0]))
        if "REC::Particle_pid" in batch:
            row.update(_objects(*(col("REC::Particle", c, k) for c in (
                "pid", "px", "py", "pz", "vz", "charge"))))
        if simulated:
            row.update({f"particle_{c if c != 'pid' else 'pdg'}": col("MC::Particle", c, k)
                        for c in ("pid", "px", "py", "pz", "vx", "vy", "vz", "vt")})
        yield row


def _objects(pid: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray,
             vz: np.ndarray, charge: np.ndarray) -> dict[str, Any]:
    """Object columns of one event's REC::Particle rows."""
    types = [_TYPES.get(abs(int(p)), "charged_track" if q else "neutral_hadron")
             for p, q in zip(pid, charge, strict=True)]
    mass = [_MASSES.get(abs(int(p)), _PION_MASS if q else 0.0)
            for p, q in zip(pid, charge, strict=True)]
    return {"object_px": px, "object_py": py, "object_pz": pz,
            "object_charge": charge.astype(np.float32), "object_z0": vz,
            "object_type": types, "object_mass": np.array(mass, np.float32)}
