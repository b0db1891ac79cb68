"""Reader of the MIT ALEPH archived text format (``.aleph``) into the event model.

Format (MITOpenData ALEPH archive): a header ``<KIND> RUN = r EVENT e ECM = E GEV`` with
KIND one of ALEPH_DATA, MC_RECO, MC_TRUE_AFTER_CUT, MC_TRUE_BEFORE_CUT; an optional
``Primary vertex info flag = f vx = … vy = … ex = … ey = …`` line; one object per line
``px= py= pz= m= charge q pwflag w [d0 z0 ntpc nitc nvdet] [pid N [pname NAME]]``
(GeV, cm); ``END_EVENT`` and ``END_FILE``. Column widths vary between files; lines may
also be bare numbers (6 columns, or 11 with d0 … nvdet).

Reconstructed files become events with objects; truth files become events with
particles; ``link`` joins reconstructed and truth events with the same run/event.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from npfm.events.errors import NpfmError

KINDS = ("ALEPH_DATA", "MC_RECO", "MC_TRUE_AFTER_CUT", "MC_TRUE_BEFORE_CUT")
_HEADER = re.compile(r"^(?P<kind>[A-Z_]+)\s+RUN\s*=\s*(?P<run>-?\d+)\s+EVENT\s+(?P<event>-?\d+)"
                     r"\s+ECM\s*=\s*(?P<ecm>\S+)\s*GEV\s*$")
_VERTEX = re.compile(r"Primary vertex info\s+flag\s*=\s*(\S+)\s+vx\s*=\s*(\S+)\s+vy\s*=\s*(\S+)"
                     r"\s+ex\s*=\s*(\S+)\s+ey\s*=\s*(\S+)")
_NUMERIC = ("px", "py", "pz", "m", "charge", "pwflag", "d0", "z0", "ntpc", "nitc", "nvdet")
_POSITIONAL = {6: _NUMERIC[:6], 11: _NUMERIC}
_POSITIONAL_MAX = max(_POSITIONAL)
_KEYS = {*_NUMERIC, "pid", "pname"}

#: Longest line read, in characters: archive lines are under 200; a longer one is damage
#: (reading it whole could cost gigabytes), refused with the file and line.
MAX_LINE_CHARS = 4096
#: The most characters of a bad token that an error message repeats.
ECHO_CHARS = 80
#: Run and event numbers are stored as int64; |momentum|, mass, charge as float32.
_INT64_MAX = 2**63 - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: The archive writes d0 = z0 = -999 for objects without a track (photons, neutral hadrons).
NOT_MEASURED = -999.0
#: ALEPH solenoid field, T (ALEPH collaboration, NIM A 294 (1990) 121).
ALEPH_FIELD_T = 1.5
#: Subsystems of the ntpc, nitc, nvdet hit counts.
HIT_COUNT_SUBSYSTEMS = ("TPC", "ITC", "VDET")

#: ALEPH particle names/codes of the truth lines (the GEANT3 numbering, GEANT User's Guide
#: CONS300, for codes 1-49; ALEPH adds 58-63 for the neutrino flavours) -> PDG id. The
#: name wins where both are known. GEANT3 code 4 ("nu", a neutrino of unstated flavour),
#: 48 (geantino) and 50 (Cerenkov photon) have no PDG equivalent: their particle_pdg is
#: null, as for codes outside the table.
_PDG_BY_NAME = {
    "gamma": 22, "e+": -11, "e-": 11, "mu+": -13, "mu-": 13, "pi0": 111, "pi+": 211,
    "pi-": -211, "K0l": 130, "K+": 321, "K-": -321, "n": 2112, "p": 2212, "p#": -2212,
    "K0s": 310, "eta": 221, "Lam0": 3122, "Sig+": 3222, "Sig0": 3212, "Sig-": 3112,
    "Xi0": 3322, "Xi-": 3312, "Om-": 3334, "n#": -2112, "Lam#0": -3122, "Sig#-": -3222,
    "Sig#0": -3212, "Sig#+": -3112, "Xi#0": -3322, "Xi#+": -3312, "Om#+": -3334,
    "deuteron": 1000010020, "triton": 1000010030, "alpha": 1000020040, "He3": 1000020030,
    "nue": 12, "nue#": -12, "numu": 14, "numu#": -14, "nutau": 16, "nutau#": -16,
    "tau+": -15, "tau-": 15, "D+": 411, "D-": -411, "D0": 421, "D#0": -421, "Ds+": 431,
    "Ds-": -431, "Lamc+": 4122, "W+": 24, "W-": -24, "Z0": 23,
}
_PDG_BY_CODE = {1: 22, 2: -11, 3: 11, 5: -13, 6: 13, 7: 111, 8: 211, 9: -211, 10: 130,
                11: 321, 12: -321, 13: 2112, 14: 2212, 15: -2212, 16: 310, 17: 221, 18: 3122,
                19: 3222, 20: 3212, 21: 3112, 22: 3322, 23: 3312, 24: 3334, 25: -2112,
                26: -3122, 27: -3222, 28: -3212, 29: -3112, 30: -3322, 31: -3312, 32: -3334,
                33: -15, 34: 15, 35: 411, 36: -411, 37: 421, 38: -421, 39: 431, 40: -431,
                41: 4122, 42: 24, 43: -24, 44: 23, 45: 1000010020, 46: 1000010030,
                47: 1000020040, 49: 1000020030, 58: 12, 59: -12, 60: 14, 61: -14, 62: 16,
                63: -16}
# Object types by the reconstructed (energy-flow) pwflag: 0 charged track, 1 electron,
# 2 muon, 3 V0, 4 photon, 5 neutral hadron (ALPHA energy-flow types; checked against truth
# in docs/formats.md). Truth lines use the flag otherwise: it is kept uninterpreted.
_OBJECT_TYPES = ("charged_track", "electron", "muon", "v0", "photon", "neutral_hadron")
#: Extension column of the truth pwflag and its description (docs/event-model.md).
TRUTH_PWFLAG = "particle_ext_pwflag"
TRUTH_PWFLAG_DOC = ("pwflag of the MIT ALEPH truth line, as the file gives it (not the "
                    "reconstruction's energy-flow type: in the archive's truth files 1 marks "
                    "muons, 2 electrons, -11 neutrinos; see docs/formats.md)")


@dataclass
class AlephEvent:
    """One event block of an ``.aleph`` file, as parsed."""

    kind: str
    run: int
    event: int
    ecm: float
    vertex: tuple[float, ...] | None = None  # flag, vx, vy, ex, ey (cm)
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: Where the first NaN, inf or number beyond the float32 range is (file, line, field).
    bad: str | None = None

    def note(self, values: dict[str, Any], where: str) -> None:
        """Remember the first value that cannot be stored as a finite float32."""
        if self.bad is not None:
            return
        floats = [v for v in values.values() if v.__class__ is float]
        if math.isfinite(sum(floats)) and max(map(abs, floats), default=0.0) <= _FLOAT32_MAX:
            return  # the fast path: a sum is finite only if every value is
        key = next(k for k, v in values.items() if v.__class__ is float
                   and not abs(v) <= _FLOAT32_MAX)  # NaN fails too
        self.bad = f"{where} field {key} = {values[key]:g}"


def clip(text: str) -> str:
    """``text`` cut to ``ECHO_CHARS`` characters (with an ellipsis) for an error message."""
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


def _number(token: str, key: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"{key} {clip(token)!r} is not a number") from None


def _parse_object(text: str, where: str) -> dict[str, Any]:
    tokens = text.replace("=", " ").split()
    row: dict[str, Any] = {}
    key, value = "", ""
    try:
        if tokens[0] not in _NUMERIC:  # bare numbers
            if len(tokens) not in _POSITIONAL:
                raise NpfmError(where, f"cannot parse object line ({len(tokens)} bare numbers "
                                f"(expected 6 or 11), starting {clip(tokens[0])!r})",
                                "check the file is an MIT ALEPH archive file")
            for key, value in zip(_POSITIONAL[len(tokens)], tokens, strict=True):
                row[key] = float(value)
            return row
        for i in range(0, len(tokens), 2):
            key, value = tokens[i], ""
            if key not in _KEYS:
                raise NpfmError(where, f"cannot parse object line (unknown field "
                                f"{clip(key)!r})", "check the file is an MIT ALEPH archive "
                                "file and not damaged")
            value = tokens[i + 1]
            row[key] = value if key == "pname" else int(value) if key == "pid" else \
                float(value)
    except (ValueError, IndexError):
        what = "a value" if not value else "a whole number" if key == "pid" else "a number"
        raise NpfmError(where, f"cannot parse object line ({clip(key)} {clip(value)!r} is "
                        f"not {what})", "check the file is an MIT ALEPH archive file and not "
                        "damaged") from None
    missing = [k for k in _NUMERIC[:6] if k not in row]
    if missing:
        raise NpfmError(where, f"object line lacks {missing}",
                        "each object needs px py pz m charge pwflag")
    return row


def _header(match: re.Match[str], where: str) -> AlephEvent:
    if match["kind"] not in KINDS:
        raise NpfmError(where, f"unknown header kind {clip(match['kind'])!r}",
                        f"expected one of {', '.join(KINDS)}")
    numbers = {k: int(match[k]) for k in ("run", "event")}
    for key, value in numbers.items():
        if abs(value) > _INT64_MAX:
            raise NpfmError(f"{where} {key.upper()}", f"{clip(match[key])} is outside the "
                            f"valid range -{_INT64_MAX}..{_INT64_MAX}",
                            "restore the header from the archive (a damaged number?)")
    try:
        ecm = _number(match["ecm"], "ECM")
    except ValueError as exc:
        raise NpfmError(f"{where} ECM", str(exc), "give the energy in GeV") from None
    return AlephEvent(match["kind"], numbers["run"], numbers["event"], ecm)


def _outside(text: str, where: str) -> NpfmError:
    """The error for a line before any header: the cleaned numeric-only layout of the
    archive (object lines of bare numbers, no headers, no END_EVENT) is named as such."""
    try:
        numbers = [float(t) for t in text.split()[:_POSITIONAL_MAX]]
    except ValueError:
        numbers = []
    if numbers:
        return NpfmError(where, "the cleaned numeric-only ALEPH layout (bare-number object "
                         "lines without RUN/EVENT headers or END_EVENT): it carries no event "
                         "boundaries or run/event numbers, so npfm does not read it",
                         "import the original archive file, with its headers")
    return NpfmError(where, "object line outside an event", "each event starts with a "
                     "'<KIND> RUN = r EVENT e ECM = E GEV' header; check the file is an MIT "
                     "ALEPH archive file")


def _lines(fh: Any, path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines, each read with a bounded buffer (``MAX_LINE_CHARS``)."""
    for number, line in enumerate(iter(functools.partial(fh.readline, MAX_LINE_CHARS + 1), ""),
                                  start=1):
        if len(line) > MAX_LINE_CHARS:
            raise NpfmError(f"{path} line {number}", f"line longer than {MAX_LINE_CHARS} "
                            "characters (archive lines are under 200)",
                            "check the file is an MIT ALEPH archive file and not damaged")
        yield number, line


def read_aleph(path: Path, progress: Callable[[int], None] | None = None, *,
               finite: bool = False) -> Iterator[AlephEvent]:
    """Stream the event blocks of one file; ``progress(bytes)`` reports reading.
    ``finite``: record in ``AlephEvent.bad`` where the first NaN, inf or number beyond
    the float32 range is (checked only when asked: it costs time)."""
    path = Path(path)
    current: AlephEvent | None = None
    ended = False
    with open(path, encoding="ascii", errors="strict") as fh:
        try:
            for number, line in _lines(fh, path):
                if progress:
                    progress(len(line))
                text, where = line.strip(), f"{path} line {number}"
                if not text:
                    continue
                if ended:
                    raise NpfmError(where, "content after END_FILE", "remove trailing lines")
                if text == "END_FILE":
                    if current is not None:
                        raise NpfmError(where, "END_FILE inside an event", "add END_EVENT")
                    ended = True
                elif text == "END_EVENT":
                    if current is None:
                        raise NpfmError(where, "END_EVENT without a header", "fix the file")
                    yield current
                    current = None
                elif (match := _HEADER.match(text)) is not None:
                    if current is not None:
                        raise NpfmError(where, "new header before END_EVENT (truncated event)",
                                        "restore the file from the archive")
                    current = _header(match, where)
                    if finite:
                        current.note({"ECM": current.ecm}, where)
                elif (vmatch := _VERTEX.search(text)) is not None and current is not None:
                    try:
                        current.vertex = tuple(_number(v, "vertex") for v in vmatch.groups())
                    except ValueError as exc:
                        raise NpfmError(where, str(exc), "restore the line from the archive"
                                        ) from None
                    if finite:
                        current.note(dict(zip(("flag", "vx", "vy", "ex", "ey"),
                                              current.vertex, strict=True)), where)
                elif current is None:
                    raise _outside(text, where)
                else:
                    current.rows.append(_parse_object(text, where))
                    if finite:
                        current.note(current.rows[-1], where)
        except UnicodeDecodeError:
            raise NpfmError(str(path), "not a text file", "give an MIT ALEPH .aleph file"
                            ) from None
    if current is not None or not ended:
        raise NpfmError(str(path), "file ends without END_FILE (truncated)",
                        "restore the complete file from the archive")


def _column(rows: list[dict[str, Any]], key: str) -> np.ndarray | None:
    if not rows or any(key not in r for r in rows):
        return None if rows else np.zeros(0)
    return np.array([r[key] for r in rows], dtype=np.float64)


def _unless_sentinel(values: np.ndarray | None) -> list[float | None] | None:
    """Impact parameters with the archive's -999 "not measured" marker made null."""
    if values is None:
        return None
    return [None if v <= NOT_MEASURED else float(v) for v in values]


def _pdg(row: dict[str, Any]) -> int | None:
    if "pname" in row and row["pname"] in _PDG_BY_NAME:
        return _PDG_BY_NAME[row["pname"]]
    return _PDG_BY_CODE.get(int(row.get("pid", -1)))


def to_event(reco: AlephEvent | None, truth: AlephEvent | None,
             process: str | None = None) -> dict[str, Any]:
    """Event-model mapping of a reconstructed block, a truth block, or both."""
    head = reco or truth
    assert head is not None, "to_event needs at least one block"
    real = head.kind == "ALEPH_DATA"
    event: dict[str, Any] = {
        "facility": "LEP", "experiment": "ALEPH", "geometry_id": "ALEPH",
        "beam1_pdg": 11, "beam2_pdg": -11, "beam1_energy": head.ecm / 2,
        "beam2_energy": head.ecm / 2, "sqrt_s": head.ecm, "process": process,
        "run": head.run, "event": head.event, "magnetic_field": ALEPH_FIELD_T,
        "data_level": "real-archived" if real else "simulated",
    }
    if reco is not None and reco.vertex is not None:
        event["vertex_x"], event["vertex_y"] = reco.vertex[1], reco.vertex[2]
    if reco is not None:
        rows = reco.rows
        flags = _column(rows, "pwflag")
        assert flags is not None
        bad = (flags < 0) | (flags > 5) | (flags != np.round(flags))
        if bad.any():
            raise NpfmError(f"run {reco.run} event {reco.event}", f"pwflag "
                            f"{flags[bad][0]:g} outside 0-5", "check the source file")
        event.update(
            object_px=_column(rows, "px"), object_py=_column(rows, "py"),
            object_pz=_column(rows, "pz"), object_mass=_column(rows, "m"),
            object_charge=_column(rows, "charge"),
            object_type=[_OBJECT_TYPES[int(f)] for f in flags],
            object_d0=_unless_sentinel(_column(rows, "d0")),
            object_z0=_unless_sentinel(_column(rows, "z0")))
        counts = [c for k in ("ntpc", "nitc", "nvdet") if (c := _column(rows, k)) is not None]
        if len(counts) == len(HIT_COUNT_SUBSYSTEMS):
            event["subsystems"] = list(HIT_COUNT_SUBSYSTEMS)
            event["object_nhits"] = np.stack(counts, axis=1).astype(np.int16) if rows else \
                np.zeros((0, 3), np.int16)
    if truth is not None:
        rows = truth.rows
        event.update(
            particle_pdg=[_pdg(r) for r in rows], particle_charge=_column(rows, "charge"),
            particle_px=_column(rows, "px"), particle_py=_column(rows, "py"),
            particle_pz=_column(rows, "pz"), particle_mass=_column(rows, "m"))
        event[TRUTH_PWFLAG] = _whole(_column(rows, "pwflag"), truth)
        event["extensions"] = {TRUTH_PWFLAG: TRUTH_PWFLAG_DOC}
    return event


def _whole(flags: np.ndarray | None, block: AlephEvent) -> np.ndarray:
    """The truth pwflags as int64 (a fractional one is refused)."""
    assert flags is not None, "every object line has a pwflag"
    bad = (flags != np.round(flags)) | (np.abs(flags) > _INT64_MAX)
    if bad.any():
        raise NpfmError(f"run {block.run} event {block.event}", f"truth pwflag "
                        f"{flags[bad][0]:g} is not a whole number", "check the source file")
    return flags.astype(np.int64)


def link(reco: Iterator[AlephEvent], truth: Iterator[AlephEvent], stats: dict[str, int]
         ) -> Iterator[tuple[AlephEvent | None, AlephEvent | None]]:
    """Pair reconstructed and truth blocks by (run, event).

    Memory stays small when both streams list events in the same order (as the archive
    does); out-of-order truth blocks wait in a look-up table. Unpaired blocks are yielded
    alone, so none is lost; ``stats`` counts linked and unpaired blocks.
    """
    pending: dict[tuple[int, int], AlephEvent] = {}
    truth_iter = iter(truth)
    for block in reco:
        key = (block.run, block.event)
        match = pending.pop(key, None)
        while match is None:
            nxt = next(truth_iter, None)
            if nxt is None:
                break
            if (nxt.run, nxt.event) == key:
                match = nxt
            else:
                pending[(nxt.run, nxt.event)] = nxt
        stats["linked" if match else "reco_only"] += 1
        yield block, match
    for block in [*pending.values(), *truth_iter]:
        stats["truth_only"] += 1
        yield None, block


def read_archive(paths: Sequence[Path], *, process: str | None = None,
                 progress: Callable[[int], None] | None = None,
                 stats: dict[str, int] | None = None,
                 finite: bool = False) -> Iterator[dict[str, Any]]:
    """Event mappings from a set of archive files: reconstructed files (ALEPH_DATA,
    MC_RECO) are linked with truth files (MC_TRUE_*) by run and event, told apart by
    their first header. ``progress(bytes)``; ``stats`` counts linked/unpaired blocks.

    ``finite``: refuse a NaN, inf or a number beyond the float32 range at its file, line
    and field (``npfm import-aleph``); otherwise it goes into the event, whose value
    checks reject it (a curation quarantines the event)."""
    reco: list[Path] = []
    truth: list[Path] = []
    for path in sorted(Path(p) for p in paths):
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                kind = fh.readline(MAX_LINE_CHARS).split(" ", 1)[0]
        except OSError as exc:
            raise NpfmError(str(path), f"cannot be read ({exc.strerror})",
                            "check the path of the archive file") from None
        (truth if kind.startswith("MC_TRUE") else reco).append(path)
    counts = stats if stats is not None else {}
    for key in ("linked", "reco_only", "truth_only"):
        counts.setdefault(key, 0)

    def blocks(files: list[Path]) -> Iterator[AlephEvent]:
        for path in files:
            for block in read_aleph(path, progress=progress, finite=finite):
                if finite and block.bad is not None:
                    raise NpfmError(block.bad, "not a finite number within "
                                    f"+-{_FLOAT32_MAX:.4g}", "restore the line from the "
                                    "archive (store unmeasured values as -999)")
                yield block

    for r, t in link(blocks(reco), blocks(truth), counts):
        yield to_event(r, t, process)
