"""Exports of a catalog dataset: Croissant, DataCite JSON, schema.org JSON-LD, RO-Crate.

All four are built from the dataset's standard record (``standard.dataset_record``), so a
dataset imported from CERN Open Data exports the same way as an npfm corpus.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rocrate.rocrate import ROCrate

from npfm.catalog.models import Dataset
from npfm.catalog.standard import dataset_record
from npfm.events import metadata
from npfm.events.errors import NpfmError

PARQUET = "application/x-parquet"


def _year(record: dict[str, Any]) -> int:
    year = record.get("publication_year")
    if isinstance(year, int):
        return year
    created = str(record.get("created", ""))
    return int(created[:4]) if created[:4].isdigit() else dt.date.today().year


def _citation(record: dict[str, Any]) -> metadata.Citation:
    return metadata.Citation(
        title=record["title"], creators=tuple(c["name"] for c in record["creators"]),
        publisher=record.get("publisher", "npfm"), year=_year(record),
        license=record["license"], identifier=record.get("doi") or record["identifier"],
        description=description(record))


def description(record: dict[str, Any]) -> str:
    """The record's description, or one composed from its facets when empty."""
    if record.get("description"):
        return str(record["description"])
    facets = record.get("facets", {})
    parts = [", ".join(map(str, facets.get(k, []))) for k in
             ("experiment", "collision_system", "data_level")]
    energies = ", ".join(f"{e:g}" for e in facets.get("energy_gev", []))
    size = record.get("size", {})
    return (f"{record['title']}: {size.get('events', 0)} events in {size.get('files', 0)} "
            f"file(s); experiment {parts[0] or 'unknown'}, collisions "
            f"{parts[1] or 'unknown'}" + (f" at sqrt(s) = {energies} GeV" if energies else "")
            + f", data level {parts[2] or 'unknown'}.")


def croissant(dataset: Dataset) -> dict[str, Any]:
    """Croissant 1.1 JSON-LD. An npfm corpus gets the full ``events`` record set of the
    event model; other data sets list their files. Croissant needs a sha256 (or md5) per
    file: a file known only by adler32 must be verified first (``npfm catalog verify``
    reads it and records its sha256)."""
    record = dataset_record(dataset)
    files = record["files"]
    unhashed = [f["path"] for f in files if "sha256" not in f]
    if unhashed:
        raise NpfmError(f"dataset {record['name']}: file {unhashed[0]}",
                        f"no sha256 ({len(unhashed)} file(s)); Croissant needs one per file",
                        "run npfm catalog verify on the dataset where its files are readable")
    prov = record.get("provenance", {})
    provenance = metadata.Provenance(command=prov.get("command", record["source"]),
                                     inputs=tuple(prov.get("inputs", [])))
    shards = [{"path": f["path"], "bytes": f["bytes"], "sha256": f["sha256"]} for f in files]
    events = record["size"].get("events", 0)
    if record["source"] == "npfm" and record.get("format", {}).get("name") == "npfm-corpus":
        return metadata.croissant(_citation(record), shards, provenance, events)
    doc = metadata.croissant(_citation(record), [], provenance, events)
    doc.pop("recordSet")
    doc["distribution"] = [
        {"@type": "cr:FileObject", "@id": f"file-{i}", "name": Path(f["path"]).name,
         "contentUrl": f.get("url", f["path"]), "contentSize": f"{f['bytes']} B",
         "encodingFormat": _media_type(f["path"]), "sha256": f["sha256"]}
        for i, f in enumerate(files)]
    return doc


def _media_type(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return {".parquet": PARQUET, ".root": "application/x-root", ".json": "application/json",
            ".csv": "text/csv", ".txt": "text/plain"}.get(suffix, "application/octet-stream")


def datacite(dataset: Dataset) -> dict[str, Any]:
    """DataCite metadata schema 4 attributes (the JSON of the DataCite REST API)."""
    record = dataset_record(dataset)
    out = metadata.datacite(_citation(record), record["size"].get("events", 0))
    out["subjects"] = [{"subject": k} for k in record.get("keywords", [])] + [
        {"subject": f"{facet}: {value}"} for facet, values in record["facets"].items()
        for value in values]
    out["sizes"] = [f"{record['size'].get('events', 0)} events",
                    f"{record['size']['bytes']} bytes", f"{record['size']['files']} files"]
    out["formats"] = sorted({_media_type(f["path"]) for f in record["files"]}) or [PARQUET]
    out["relatedIdentifiers"] = [
        {"relatedIdentifier": f"sha256:{i['sha256']}", "relatedIdentifierType": "URN",
         "relationType": "IsDerivedFrom"} for i in record.get("provenance", {}).get("inputs", [])]
    out["dates"] = [{"date": record.get("created", ""), "dateType": "Created"}]
    return out


def schema_org_jsonld(dataset: Dataset) -> dict[str, Any]:
    """schema.org ``Dataset`` JSON-LD for a ``<script type="application/ld+json">`` tag."""
    record = dataset_record(dataset)
    facets = record["facets"]
    out: dict[str, Any] = {
        "@context": "https://schema.org/", "@type": "Dataset", "name": record["title"],
        "alternateName": record["name"], "description": description(record),
        "identifier": (record.get("doi") and f"https://doi.org/{record['doi']}")
        or record["identifier"],
        "license": record["license"], "isAccessibleForFree": True,
        "creator": [{"@type": "Person", "name": c["name"]} for c in record["creators"]],
        "keywords": record.get("keywords", []) + [str(v) for k in ("experiment", "facility",
                                                  "collision_system") for v in facets.get(k, [])],
        "dateCreated": record.get("created", ""),
        "measurementTechnique": facets.get("detector", []),
        "variableMeasured": [{"@type": "PropertyValue", "name": "sqrt(s)", "unitText": "GeV",
                              "value": e} for e in facets.get("energy_gev", [])],
        "distribution": [{"@type": "DataDownload", "contentUrl": f.get("url", f["path"]),
                          "encodingFormat": _media_type(f["path"]),
                          "contentSize": f"{f['bytes']} B"} for f in record["files"]],
    }
    if record.get("landing_page"):
        out["url"] = record["landing_page"]
    return out


def ro_crate(dataset: Dataset, out_dir: Path) -> Path:
    """Write an RO-Crate 1.x directory describing ``dataset``; returns ``out_dir``.

    The data files are referenced by their URL (not copied), with size and checksums; the
    standard record, DataCite and (when every file has a sha256) Croissant documents are
    written inside the crate.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise NpfmError(str(out_dir), "directory exists and is not empty",
                        "choose a new directory for the RO-Crate")
    record = dataset_record(dataset)
    crate = ROCrate()
    crate.name = record["title"]
    crate.description = description(record)
    root = crate.root_dataset
    root["license"] = record["license"]
    root["identifier"] = record.get("doi") or record["identifier"]
    root["keywords"] = record.get("keywords", [])
    root["datePublished"] = record.get("created") or dt.date.today().isoformat()
    for file in record["files"]:
        props = {"name": Path(file["path"]).name, "contentSize": str(file["bytes"]),
                 "encodingFormat": _media_type(file["path"])}
        props.update({k: file[k] for k in ("sha256", "adler32") if k in file})
        crate.add_file(file.get("url") or file["path"], fetch_remote=False, properties=props)
    docs = {"npfm-record.json": record, "datacite.json": datacite(dataset)}
    if all("sha256" in f for f in record["files"]):  # Croissant needs them (see croissant)
        docs["croissant.json"] = croissant(dataset)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=".rocrate-") as tmp:
        for name, doc in docs.items():
            (Path(tmp) / name).write_text(json.dumps(doc, indent=1, default=str))
            crate.add_file(Path(tmp) / name, dest_path=f"metadata/{name}", properties={
                "name": name, "encodingFormat": "application/json"})
        crate.write(Path(tmp) / "crate")
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(Path(tmp) / "crate", out_dir)  # appears whole or not at all
    return out_dir
