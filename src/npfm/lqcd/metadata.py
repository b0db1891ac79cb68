"""QCDml-inspired metadata of ensembles and configurations, and Croissant for HDF5 exports.

The ensemble record follows the structure of ILDG's QCDml ensemble and configuration
schemas (markovChain: physics/action/size, algorithm, and per configuration the
trajectory, the LFN and checksums; Maynard et al., "QCDml", www.lqcd.org/ildg), written
as JSON rather than XML. Croissant (mlcommons.org/croissant) describes HDF5 exports; its
fields name Parquet columns (read by mlcroissant) or HDF5 dataset paths in
``extract.column``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from npfm.events.errors import NpfmError
from npfm.events.metadata import _CONTEXT, code_version
from npfm.events.shards import read_json, sha256_file

SCHEMA = "npfm-lqcd-ensemble/1"
ENSEMBLE_FILE = "ensemble.json"
LICENSE = "https://creativecommons.org/licenses/by/4.0/"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def ensemble_record(name: str, lattice: tuple[int, int, int, int], beta: float,
                    algorithm: dict[str, Any], command: str, gluon: str = "Wilson plaquette",
                    quark: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ensemble part of the record; configurations and observables are added later.

    ``quark`` (from ``npfm.lqcd.actions.quark_action``) is None for a quenched ensemble."""
    lx, ly, lz, lt = lattice
    return {
        "schema": SCHEMA, "name": name, "markovChainURI": f"urn:npfm:lqcd:{name}",
        "created": now(), "license": LICENSE, "creators": ["npfm developers"],
        "physics": {
            "size": {"lx": lx, "ly": ly, "lz": lz, "lt": lt},
            "boundaryConditions": {"gauge": "periodic", "fermion_time": "antiperiodic"},
            "action": {"gluon": {"name": gluon, "beta": beta, "nColours": 3},
                       "quark": quark, "nFlavours": quark["nFlavours"] if quark else 0},
            "temperature": "zero" if lt >= max(lx, ly, lz) else "finite (1/lt)",
        },
        "algorithm": algorithm,
        "configurations": [],
        "code": code_version(), "command": command,
    }


def configuration_entry(path: Path, root: Path, trajectory: int, lfn: str, suma: int,
                        sumb: int, observables: dict[str, Any]) -> dict[str, Any]:
    """One configuration: file, trajectory (sweep number), LFN, checksums, observables."""
    return {"file": str(path.relative_to(root)), "trajectory": trajectory, "lfn": lfn,
            "sha256": sha256_file(path), "bytes": path.stat().st_size,
            "scidac_checksum": {"suma": f"{suma:x}", "sumb": f"{sumb:x}"}, **observables}


def load_ensemble(path: Path) -> dict[str, Any]:
    """The ensemble record of a directory written by ``npfm lqcd generate``."""
    record = read_json(Path(path) / ENSEMBLE_FILE, "lattice ensemble record")
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise NpfmError(str(Path(path) / ENSEMBLE_FILE), f"not an {SCHEMA} record",
                        "point at a directory written by npfm lqcd generate")
    return record


_FORMATS = {".h5": "application/x-hdf5", ".parquet": "application/x-parquet"}


def croissant(name: str, description: str, files: list[Path],
              record_sets: list[dict[str, Any]], data_collection: str) -> dict[str, Any]:
    """Croissant 1.1 JSON-LD listing ``files`` (HDF5, Parquet; in one directory) and record
    sets made by ``record_set``, whose fields are read from their ``source_file`` (default
    ``files[-1]``)."""
    source_id = files[-1].name  # file names as ids: distinct from the record set ids
    return {
        "@context": _CONTEXT, "@type": "sc:Dataset", "name": name, "description": description,
        "conformsTo": "http://mlcommons.org/croissant/1.1", "license": LICENSE,
        "creator": [{"@type": "sc:Person", "name": "npfm developers"}],
        "datePublished": now()[:10], "version": "1.0.0",
        "citeAs": f"npfm developers. {name}. npfm lattice QCD export.",
        "url": f"urn:npfm:lqcd:{name}",
        "rai:dataCollection": data_collection,
        "rai:dataBiases": "Monte Carlo data: finite lattice spacing and volume; quenched "
                          "(no sea quarks).",
        "rai:dataLimitations": "Lattice units (a = 1). Small lattices for workflow tests, "
                               "not for continuum physics.",
        "distribution": [{"@type": "cr:FileObject", "@id": path.name, "name": path.name,
                          "contentUrl": path.name, "encodingFormat": _FORMATS[path.suffix],
                          "contentSize": f"{path.stat().st_size} B",
                          "sha256": sha256_file(path)} for path in files],
        "recordSet": [
            {**{k: v for k, v in rs.items() if k != "_file"},
             "field": [dict(f, source={"fileObject": {"@id": rs.get("_file", source_id)},
                                       **f["source"]}) for f in rs["field"]]}
            for rs in record_sets],
    }


def record_set(name: str, description: str, fields: list[tuple[str, str, str, str]],
               source_file: str | None = None) -> dict[str, Any]:
    """A record set whose fields are (name, column or HDF5 dataset path, dataType, doc),
    read from the file named ``source_file`` (default: the last file of the dataset)."""
    extra = {"_file": source_file} if source_file else {}
    return {"@type": "cr:RecordSet", "@id": name, "name": name, "description": description,
            **extra,
            "field": [{"@type": "cr:Field", "@id": f"{name}/{fname}", "name": fname,
                       "description": doc, "dataType": dtype, "repeated": True,
                       "source": {"extract": {"column": dataset}}}
                      for fname, dataset, dtype, doc in fields]}
