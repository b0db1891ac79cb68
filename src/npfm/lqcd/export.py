"""AI-ready HDF5 exports of configurations and correlators, each with ``croissant.json``
(correlators also as Parquet, one row per configuration, which mlcroissant reads).

Complex numbers are stored as a trailing (real, imaginary) axis of float64, so any HDF5
reader (and array libraries without complex support) reads them. Attributes carry the
lattice size, beta and units; the sha256 of every source ILDG file is kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from npfm.events.shards import FILE_MODE, atomic_write_json, sha256_file
from npfm.lqcd import ildg
from npfm.lqcd.metadata import croissant, record_set


def _as_real(u: torch.Tensor) -> np.ndarray:
    return torch.view_as_real(u.to(torch.complex128)).cpu().numpy()


def _replace(tmp: Path, path: Path) -> None:
    os.chmod(tmp, FILE_MODE)
    tmp.replace(path)


def export_configs(files: list[Path], out: Path, attrs: dict[str, Any],
                   trajectories: list[int] | None = None) -> Path:
    """Write ILDG files to ``out`` (.h5) as ``configs`` [n, T, Z, Y, X, mu, a, b, re/im].

    Each file is read with its checksum verified and must have the first file's lattice.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    first = ildg.read_config(files[0])
    lx, ly, lz, lt = first.lattice
    with h5py.File(tmp, "w") as h5:
        data = h5.create_dataset("configs", shape=(len(files), lt, lz, ly, lx, 4, 3, 3, 2),
                                 dtype="f8", chunks=(1, 1, lz, ly, lx, 4, 3, 3, 2))
        data.attrs["axes"] = "config, t, z, y, x, mu (x y z t), row, column, re/im"
        data.attrs["units"] = "dimensionless SU(3) link matrices"
        sha = h5.create_dataset("sha256", shape=(len(files),), dtype=h5py.string_dtype())
        traj = h5.create_dataset("trajectory", data=np.asarray(
            trajectories if trajectories is not None else range(len(files)), dtype=np.int64))
        traj.attrs["units"] = "sweeps"
        for i, path in enumerate(files):
            config = first if i == 0 else ildg.read_config(path, expected=first.lattice)
            data[i] = np.transpose(_as_real(config.u), (1, 2, 3, 4, 0, 5, 6, 7))
            sha[i] = sha256_file(path)
        h5.attrs.update({"lattice_lx_ly_lz_lt": [lx, ly, lz, lt], **attrs})
    _replace(tmp, out)
    fields = [("links", "configs", "sc:Float", "SU(3) links U_mu(x), re/im last axis"),
              ("trajectory", "trajectory", "sc:Integer", "sweep number of the configuration"),
              ("source_sha256", "sha256", "sc:Text", "sha256 of the source ILDG file")]
    atomic_write_json(out.with_suffix(".croissant.json"), croissant(
        out.stem, f"{len(files)} SU(3) gauge configurations on a {lx}x{ly}x{lz}x{lt} lattice",
        [out], [record_set("configurations", "one record per gauge configuration", fields)],
        "Quenched Monte Carlo (heat-bath + over-relaxation) or imported ILDG files, "
        "converted by npfm lqcd convert; checksums verified on read."))
    return out


def export_correlators(out: Path, correlators: dict[str, np.ndarray],
                       meta: dict[str, Any], trajectories: list[int],
                       sources: dict[str, str] | None = None) -> Path:
    """Write per-configuration correlators ``{name: [n_cfg, T]}`` to ``out`` (.h5) and to two
    Parquet files beside it that mlcroissant reads: one row per configuration (a column
    per observable) and, in ``<stem>-records.parquet``, one row per configuration x source x
    observable; ``sources`` names each observable's quark source (default "point")."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with h5py.File(tmp, "w") as h5:
        for name, values in correlators.items():
            ds = h5.create_dataset(f"correlators/{name}", data=values)
            ds.attrs["axes"] = "config, t (from the source slice)"
            ds.attrs["units"] = "lattice units"
        h5.create_dataset("trajectory", data=np.asarray(trajectories, dtype=np.int64))
        for key, value in meta.items():
            h5.attrs[key] = value
    _replace(tmp, out)
    table = pa.table({"trajectory": pa.array(trajectories, pa.int64()),
                      **{name: pa.array([list(map(float, row)) for row in values],
                                        pa.list_(pa.float64()))
                         for name, values in correlators.items()}})
    parquet = out.with_suffix(".parquet")
    tmp = parquet.with_name(f".{parquet.name}.tmp")
    pq.write_table(table, tmp)
    _replace(tmp, parquet)
    long = out.with_name(f"{out.stem}-records.parquet")
    sources = sources or {}
    rows = [(traj, name, list(map(float, values[i])))
            for name, values in correlators.items() for i, traj in enumerate(trajectories)]
    tmp = long.with_name(f".{long.name}.tmp")
    pq.write_table(pa.table({
        "trajectory": pa.array([r[0] for r in rows], pa.int64()),
        "source": pa.array([sources.get(r[1], "point") for r in rows], pa.string()),
        "observable": pa.array([r[1] for r in rows], pa.string()),
        "values": pa.array([r[2] for r in rows], pa.list_(pa.float64()))}), tmp)
    _replace(tmp, long)
    fields = [(name, name, "sc:Float", f"{name} correlator over t (3-point: insertion "
               "time tau = 0 .. t_s) from the source slice")
              for name in correlators]
    fields.append(("trajectory", "trajectory", "sc:Integer", "sweep number of the config"))
    long_fields = [
        ("trajectory", "trajectory", "sc:Integer", "sweep number of the configuration"),
        ("source", "source", "sc:Text", "quark source"),
        ("observable", "observable", "sc:Text", "correlator name (as in correlators)"),
        ("values", "values", "sc:Float", "correlator over t, or tau for 3-point functions")]
    doc = croissant(
        out.stem, "Meson and nucleon correlators per gauge configuration",
        [out, long, parquet],
        [record_set("correlators", "one record per gauge configuration", fields),
         record_set("correlator_records", "one record per configuration x source x "
                    "observable", long_fields, source_file=long.name)],
        "Computed by npfm lqcd measure: Wilson(-clover) propagators by even-odd "
        "preconditioned CG, contracted into pion, rho and nucleon 2- and 3-point functions.")
    for rs in doc["recordSet"]:
        for field in rs["field"]:
            field["repeated"] = field["name"] not in ("trajectory", "source", "observable")
    atomic_write_json(out.with_suffix(".croissant.json"), doc)
    return out
