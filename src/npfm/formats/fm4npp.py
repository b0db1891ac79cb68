"""FM4NPP / TPCpp-10M spacepoint files (``.npz``): reader into the event model, and writer.

Format (TPCpp-10M, Zenodo 10.5281/zenodo.16970029, Data in Brief 10.1016/j.dib.2025.112393;
FM4NPP, arXiv 2508.14087): ``data`` (sum N x 4 float32: E, x, y, z; x, y, z in cm) and
``size`` (points per event); labels ``track_ids``, ``pid_labels`` (0 other, 1 pi, 2 K, 3 p,
4 e) and ``noise_tags`` (pT < 0.06 GeV) per point. The release keeps labels in sibling files
``track_ids[_NNN].npz`` (array ``data``) beside ``spacepoints[_NNN].npz`` (as read by
FM4NPP/PP_collision scripts/prepare_data.py); the writer does the same, the reader also takes
them as arrays in the npz or as ``<stem>_<label>.npy``.

Unit of E: not stated in the sources at hand, and FM4NPP z-scores E with mean 253.1 and
standard deviation 268.7 (FM4NPP/PP_collision fm4npp/datasets/dataset.py), far above GeV
deposits: ``energy="GeV"`` (the default) is an ASSUMPTION; pass the unit, or ``"adc"``.

Memory: ``np.load`` reads an npz member whole (``mmap_mode`` does not apply inside a zip), so
members stream from the zip ``chunk_points`` rows at a time; only ``size`` is held whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from npfm.detectors import load_geometry
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.units import factor

#: Per-point label arrays of labelled files, and the event-model column of each.
LABELS = {"track_ids": "hit_track_id", "pid_labels": "hit_pid_class", "noise_tags": "hit_noise"}
#: FM4NPP drops events with more than this many points (arXiv 2508.14087, data section).
MAX_POINTS = 3200
#: sPHENIX solenoid field, T (sPHENIX TDR); TPCpp-10M is simulated at 1.4 T.
SPHENIX_FIELD_T = 1.4
#: Event-level truth of the TPCpp-10M release (PYTHIA 8.307, Detroit tune, p+p at
#: sqrt(s) = 200 GeV; Zenodo 10.5281/zenodo.16970029); pass as ``info`` to read the release.
TPCPP10M_INFO: Mapping[str, Any] = {
    "beam1_pdg": 2212, "beam2_pdg": 2212, "beam1_energy": 100.0, "beam2_energy": 100.0,
    "sqrt_s": 200.0, "process": "pp200-minbias", "generator": "Pythia",
    "generator_version": "8.307", "generator_tune": "Detroit 2021",
}
_DTYPES = {"data": np.float32, "track_ids": np.int32, "pid_labels": np.int8,
           "noise_tags": np.bool_}
_FIX_FILE = "give an FM4NPP spacepoints .npz (arrays data and size)"
_READ_ERRORS = (EOFError, OSError, ValueError, zlib.error, zipfile.BadZipFile)


def _sibling(path: Path, label: str, suffix: str = ".npz") -> Path:
    """Release naming: spacepoints_003.npz -> track_ids_003.npz; otherwise <stem>_<label>."""
    if "spacepoints" in path.stem:
        return path.with_name(path.stem.replace("spacepoints", label) + suffix)
    return path.with_name(f"{path.stem}_{label}{suffix}")


@cache
def _row_edges() -> np.ndarray:
    """Radii (cm) halfway between the 48 sPHENIX TPC pad rows (npfm sphenix geometry)."""
    geo = load_geometry("sphenix")
    radii = np.sort(geo.layers.radius[geo.layers.subsystem == geo.subsystems.index("TPC")])
    return (radii[1:] + radii[:-1]) / 2


class _Rows:
    """A C-ordered ``.npy`` stream (zip member or file), read a block of rows at a time."""

    def __init__(self, fh: IO[bytes], where: str) -> None:
        self.fh, self.where = fh, where
        try:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            self.shape, fortran, self.dtype = read(fh)
        except _READ_ERRORS as exc:
            raise NpfmError(where, f"corrupt, or not an .npy array ({exc})", _FIX_FILE) from None
        if fortran or self.dtype.hasobject or len(self.shape) not in (1, 2):
            raise NpfmError(where, f"unsupported array {self.shape} {self.dtype}",
                            "save C-ordered numeric arrays (np.savez)")
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))

    def read(self, n: int, where: str) -> np.ndarray:
        try:
            buf = self.fh.read(n * self.row_bytes)
        except _READ_ERRORS as exc:
            raise NpfmError(where, f"{self.where} cannot be read, truncated or corrupt ({exc})",
                            "download the file again") from None
        if len(buf) != n * self.row_bytes:
            raise NpfmError(where, f"{self.where} ends early (truncated)",
                            "download the file again")
        return np.frombuffer(buf, self.dtype).reshape(n, *self.shape[1:])


def _zip(stack: ExitStack, path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise NpfmError(str(path), "file not found", "check the path")
    try:
        return stack.enter_context(zipfile.ZipFile(path))
    except _READ_ERRORS:
        with open(path, "rb") as fh:
            zipped = fh.read(4) == b"PK\x03\x04"
        raise NpfmError(str(path), "truncated or corrupt .npz (zip) archive" if zipped else
                        "not an .npz file", _FIX_FILE) from None


def _member(stack: ExitStack, zf: zipfile.ZipFile, path: Path, name: str) -> _Rows:
    if f"{name}.npy" not in zf.namelist():
        raise NpfmError(str(path), f"no array `{name}` (arrays: "
                        f"{[n.removesuffix('.npy') for n in zf.namelist()]})", _FIX_FILE)
    return _Rows(stack.enter_context(zf.open(f"{name}.npy")), f"{path} array {name}")


def _labels(stack: ExitStack, zf: zipfile.ZipFile, path: Path, n_points: int
            ) -> dict[str, _Rows]:
    """Label arrays inside the npz, else in sibling files; each must have N integers."""
    found: dict[str, _Rows] = {}
    for label in LABELS:
        npz, npy = _sibling(path, label), _sibling(path, label, ".npy")
        if f"{label}.npy" in zf.namelist():
            rows = _member(stack, zf, path, label)
        elif npz.is_file():
            rows = _member(stack, _zip(stack, npz), npz, "data")
        elif npy.is_file():
            rows = _Rows(stack.enter_context(npy.open("rb")), str(npy))
        else:
            continue
        if rows.shape != (n_points,) or rows.dtype.kind not in "biu":
            raise NpfmError(rows.where, f"shape {rows.shape} {rows.dtype}, expected "
                            f"({n_points},) integers", "give one label per point of data")
        found[label] = rows
    return found


def read_fm4npp(path: Path | str, *, run: int = 0, first_event: int = 0, energy: str = "GeV",
                info: Mapping[str, Any] | None = None, chunk_points: int = 1 << 20,
                progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Stream one file's events as event-model mappings of sPHENIX TPC hits.

    Event numbers are ``first_event``, ``first_event + 1``, ... in file order; ``info``
    adds event-level columns (e.g. ``TPCPP10M_INFO``); ``progress(n_events)`` follows each
    block. Labels, where present, fill hit_track_id, hit_pid_class and hit_noise (null
    otherwise); hit_layer is the nearest TPC pad row; hit_particle stays null.
    """
    path = Path(path)
    key, scale = ("hit_adc", 1.0) if energy == "adc" else ("hit_edep", factor(energy, "energy"))
    with ExitStack() as stack:
        zf = _zip(stack, path)
        data, size = _member(stack, zf, path, "data"), _member(stack, zf, path, "size")
        sizes = size.read(size.shape[0], size.where).astype(np.int64)
        if data.shape[1:] != (4,) or data.dtype.kind != "f" or len(size.shape) != 1 \
                or size.dtype.kind not in "iu" or (sizes < 0).any():
            raise NpfmError(str(path), f"data {data.shape} {data.dtype}, size {size.shape} "
                            f"{size.dtype}: expected (N, 4) floats and sizes >= 0", _FIX_FILE)
        if int(sizes.sum()) != data.shape[0]:
            raise NpfmError(str(path), f"event sizes sum to {int(sizes.sum())} but `data` "
                            f"has {data.shape[0]} points", "the file is damaged, or its "
                            "arrays come from different files")
        labels = _labels(stack, zf, path, data.shape[0])
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        base = {"facility": "RHIC", "experiment": "sPHENIX", "geometry_id": "sphenix",
                "run": run, "magnetic_field": SPHENIX_FIELD_T, "data_level": "simulated",
                **(info or {})}
        first = 0
        while first < len(sizes):
            stop = max(first + 1, int(np.searchsorted(bounds, bounds[first] + chunk_points,
                                                      "right")) - 1)
            where, n = f"{path} events {first}-{stop - 1}", int(bounds[stop] - bounds[first])
            offsets = bounds[first:stop + 1] - bounds[first]
            block = data.read(n, where)
            values = {k: s.read(n, where) for k, s in labels.items()}
            _check(f"{path} event", block, values, offsets, first, energy == "adc")
            columns = {"hit_x": block[:, 1], "hit_y": block[:, 2], "hit_z": block[:, 3],
                       "hit_layer": np.searchsorted(_row_edges(), np.hypot(
                           block[:, 1], block[:, 2])).astype(np.int16),
                       key: block[:, 0].astype(np.int32) if key == "hit_adc" else
                       block[:, 0] * scale,
                       **{LABELS[k]: v.astype(bool) if k == "noise_tags" else v
                          for k, v in values.items()}}
            for k in range(stop - first):
                lo, hi = offsets[k], offsets[k + 1]
                yield {**base, "event": first_event + first + k,
                       "hit_subsystem": np.full(hi - lo, "TPC"),
                       **{name: v[lo:hi] for name, v in columns.items()}}
            if progress:
                progress(stop - first)
            first = stop


def _check(where: str, block: np.ndarray, labels: dict[str, np.ndarray], offsets: np.ndarray,
           first: int, adc: bool) -> None:
    """Finite values, whole ADC counts, labels in range; errors name event and point."""
    pid, tag = labels.get("pid_labels"), labels.get("noise_tags")
    checks = [(~np.isfinite(block).all(axis=1), "non-finite value (NaN or inf) in data",
               "fix or drop the point: npfm stores no NaN"),
              (block[:, 0] != np.round(block[:, 0]) if adc else None,
               "E is not a whole ADC count", "read with energy set to the unit of E"),
              (labels["track_ids"] < -1 if "track_ids" in labels else None,
               "track id below -1", "use -1 for noise"),
              ((pid < 0) | (pid > 4) if pid is not None else None, "PID label outside 0-4",
               "use the FM4NPP classes 0 other, 1 pi, 2 K, 3 p, 4 e"),
              ((tag != 0) & (tag != 1) if tag is not None else None, "noise tag not 0 or 1",
               "store noise tags as booleans")]
    for bad, problem, fix in checks:
        if bad is not None and bad.any():
            row = int(np.flatnonzero(bad)[0])
            k = int(np.searchsorted(offsets, row, "right")) - 1
            raise NpfmError(f"{where} {first + k} point {row - offsets[k]}", problem, fix)


@dataclass(frozen=True)
class Fm4nppExport:
    """What ``write_fm4npp`` wrote, and how many events it left out."""

    files: tuple[Path, ...]
    events: int
    points: int
    dropped: int  # events over ``max_points`` TPC points (the FM4NPP cap)
    skipped: int  # events of other experiments


def write_fm4npp(source: Corpus | Path | str | Iterable[pa.Table], path: Path | str, *,
                 labelled: bool = True, max_points: int = MAX_POINTS, energy: str = "GeV",
                 experiment: str | None = "sPHENIX", compress: bool = False,
                 progress: Callable[[int], None] | None = None) -> Fm4nppExport:
    """Export the TPC hits of a corpus (directory, ``Corpus`` or event tables) to ``path``.

    Writes ``path`` (data, size) and, if ``labelled``, the release's sibling label files;
    a corpus's hit extension columns go to sibling files of the same layout (member
    ``data``, int64 per point: ``hit_ext_volume_id_003.npz`` beside
    ``spacepoints_003.npz``), which FM4NPP's own code ignores. Events with more than
    ``max_points`` TPC points are dropped and events of other experiments skipped
    (``experiment=None`` keeps all); the report counts both. E is written in ``energy``
    (unit name, or "adc" for hit_adc). ``progress(n_events)`` follows each table.
    Existing files are never overwritten.
    """
    path = Path(path)
    column, scale = ("hit_adc", 1.0) if energy == "adc" else ("hit_edep",
                                                              factor(energy, "energy"))
    corpus = None if not isinstance(source, (Corpus, Path, str)) else \
        source if isinstance(source, Corpus) else Corpus.open(source)
    extra = [n for n in (corpus.extensions if corpus else ()) if n.startswith("hit_ext_")]
    labels = {**(LABELS if labelled else {}), **{n: n for n in extra}}
    outputs = {"data": path, **{k: _sibling(path, k) for k in labels}}
    for target in outputs.values():
        if target.exists():
            raise NpfmError(str(target), "already exists", "choose another path or delete it")
    columns = ["experiment", "hit_x", "hit_y", "hit_z", "hit_subsystem", column,
               *labels.values()]
    if corpus is not None:
        tables: Iterable[pa.Table] = corpus.iter_tables(columns)
    else:
        tables = (t.select(columns) for t in cast(Iterable[pa.Table], source))
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes, counts = [np.zeros(0, np.int64)], {"dropped": 0, "skipped": 0}
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".fm4npp-") as tmp, \
            ExitStack() as stack:
        spool = {name: stack.enter_context(open(Path(tmp) / name, "wb"))
                 for name in ("data", *labels)}
        for table in tables:
            sizes.append(_spool(table, spool, labels, (column, scale), max_points, experiment,
                                counts))
            if progress:
                progress(table.num_rows)
        stack.close()
        size = np.concatenate(sizes)
        n = int(size.sum())
        for name, target in outputs.items():
            shape = (n, 4) if name == "data" else (n,)
            members: dict[str, Any] = {"size": size} if name == "data" else {}
            members["data"] = (Path(tmp) / name, shape, _DTYPES.get(name, np.int64))
            _write_npz(Path(tmp) / target.name, members, compress)
        for target in outputs.values():
            os.replace(Path(tmp) / target.name, target)
    return Fm4nppExport(tuple(outputs.values()), len(size), n, counts["dropped"], counts["skipped"])


def _spool(table: pa.Table, spool: dict[str, Any], labels: dict[str, str],
           energy: tuple[str, float], max_points: int, experiment: str | None,
           counts: dict[str, int]) -> np.ndarray:
    """Append a table's selected TPC hits to the spool files (``labels``: file label ->
    column; ``energy``: column and unit factor of E); returns the event sizes."""
    column, scale = energy
    owner = np.asarray(pc.list_parent_indices(table.column("hit_x").combine_chunks()))
    chosen = np.ones(table.num_rows, bool)
    if experiment is not None:
        chosen = np.asarray(pc.equal(table.column("experiment"), experiment).fill_null(False))
        counts["skipped"] += int((~chosen).sum())
    subsystem, unknown = _flat(table, "hit_subsystem", owner)
    tpc = (subsystem == "TPC") & ~unknown & chosen[owner]
    n_tpc = np.bincount(owner[tpc], minlength=table.num_rows)
    over = chosen & (n_tpc > max_points)
    counts["dropped"] += int(over.sum())
    keep = tpc & ~over[owner]
    if keep.any():
        values = {}
        for name in (column, "hit_x", "hit_y", "hit_z", *labels.values()):
            full, missing = _flat(table, name, owner)
            if (missing & keep).any():
                raise NpfmError(f"column {name}", "null values among the exported TPC hits",
                                "fill the column, or export without labels (labelled=False)")
            values[name] = full[keep]
        points = np.column_stack([values[column] / scale, values["hit_x"], values["hit_y"],
                                  values["hit_z"]])
        spool["data"].write(points.astype(_DTYPES["data"]).tobytes())
        for label, name in labels.items():
            spool[label].write(values[name].astype(_DTYPES.get(label, np.int64)).tobytes())
    return n_tpc[chosen & ~over]


def _flat(table: pa.Table, name: str, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-hit values of list column ``name`` and where they are missing (null)."""
    column = table.column(name).combine_chunks()
    flat = pc.list_flatten(column)
    if pa.types.is_dictionary(flat.type):
        flat = flat.dictionary_decode()
    present = ~np.asarray(column.is_null())[owner]
    values = flat.to_numpy(zero_copy_only=False)
    full = np.zeros(len(owner), values.dtype)
    full[present] = values
    missing = ~present
    missing[present] = np.asarray(flat.is_null())
    return full, missing


def _write_npz(target: Path, members: dict[str, Any], compress: bool) -> None:
    """An npz of in-memory arrays and of spool files (path, shape, dtype) copied in blocks."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(target, "w", compression=method, allowZip64=True) as zf:
        for name, member in members.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                if isinstance(member, np.ndarray):
                    np.lib.format.write_array(out, member, allow_pickle=False)
                    continue
                spool, shape, dtype = member
                np.lib.format.write_array_header_1_0(out, {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                    "fortran_order": False, "shape": shape})
                with open(spool, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
