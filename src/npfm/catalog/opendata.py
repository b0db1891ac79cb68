"""Import CERN Open Data portal records (https://opendata.cern.ch) into the catalog.

A record is the JSON of ``/api/records/<recid>`` (``{"id", "metadata": {...}}``), a bare
``metadata`` object, or a list of either. Used fields: ``recid``, ``title``,
``abstract.description``, ``accelerator``, ``experiment``, ``collision_information``
(``energy`` like "13TeV", ``type`` like "pp"), ``type.secondary`` (Collision, Simulated,
Derived), ``date_published``, ``distribution.number_events``, ``doi``, ``keywords``,
``license.attribution``, ``collaboration.name`` and ``files[]`` (``uri``, ``size``,
``checksum`` as "adler32:<8 hex>"). Each file gets a Replica at the site named after its
URI's host (e.g. ``eospublic.cern.ch``); sha256 is unknown until ``verify`` reads it.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.facets import apply_facets
from npfm.catalog.models import Dataset, File, Replica
from npfm.catalog.standard import dataset_record, validate_record
from npfm.events.errors import NpfmError
from npfm.events.shards import read_json

PORTAL = "https://opendata.cern.ch/record/"
#: Licence names used by the portal -> licence URIs (creativecommons.org).
LICENSES = {"CC0": "https://creativecommons.org/publicdomain/zero/1.0/",
            "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
            "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/"}
_LEVELS = {"collision": "real", "simulated": "simulated", "derived": "derived"}
_ENERGY = re.compile(r"^\s*([0-9.]+)\s*(TeV|GeV|MeV)\s*$", re.IGNORECASE)
_UNIT_GEV = {"tev": 1e3, "gev": 1.0, "mev": 1e-3}


def energy_gev(text: str) -> float | None:
    """'13TeV' -> 13000.0, '200GeV' -> 200.0; None if not an energy."""
    match = _ENERGY.match(text or "")
    return float(match[1]) * _UNIT_GEV[match[2].lower()] if match else None


def _records(doc: Any, where: str) -> list[dict[str, Any]]:
    items = doc if isinstance(doc, list) else [doc]
    out = []
    for i, item in enumerate(items):
        meta = item.get("metadata", item) if isinstance(item, dict) else None
        if not isinstance(meta, dict) or not meta.get("title") or "recid" not in meta:
            raise NpfmError(f"{where}: record {i}", "no metadata.title or metadata.recid",
                            "pass record JSON from opendata.cern.ch/api/records/<recid>")
        out.append(meta)
    return out


def _file(entry: dict[str, Any], where: str) -> File:
    uri = str(entry.get("uri", ""))
    if not uri:
        raise NpfmError(where, "file without uri", "give each file its uri")
    algo, _, value = str(entry.get("checksum", "")).partition(":")
    adler = value.lower() if algo == "adler32" and re.fullmatch(r"[0-9a-fA-F]{8}",
                                                                  value) else None
    parts = urllib.parse.urlsplit(uri)
    file = File(path=parts.path.lstrip("/") or uri, sha256="", bytes=int(entry.get("size", 0)),
                events=0, adler32=adler)
    file.replicas.append(Replica(site=parts.hostname or "unknown", url=uri, adler32=adler,
                                 status="available"))
    return file


def import_record(meta: dict[str, Any], session: Session, source: str = "") -> str:
    """Add one record's Dataset (with files and replicas) unless present; a message."""
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
    if session.scalar(select(Dataset).where(Dataset.manifest_sha256 == digest)):
        return f"open data record {meta['recid']} already registered"
    where = f"{source or 'record'} recid {meta['recid']}"
    collision = meta.get("collision_information", {})
    kinds = [str(k).lower() for k in meta.get("type", {}).get("secondary", [])]
    licence = str(meta.get("license", {}).get("attribution", ""))
    doi = str(meta.get("doi", ""))
    dataset = Dataset(
        name=str(meta["title"])[:256], title=str(meta["title"])[:1024],
        identifier=doi or f"{PORTAL}{meta['recid']}", schema_version=0,
        events=int(meta.get("distribution", {}).get("number_events", 0) or 0), hits=0,
        license=LICENSES.get(licence, licence), creators=[
            meta.get("collaboration", {}).get("name") or meta.get("experiment", "unknown")],
        created=str(meta.get("date_published", "")), path=source, manifest_sha256=digest,
        description=str(meta.get("abstract", {}).get("description", ""))[:8192],
        keywords=[str(k) for k in meta.get("keywords", [])], source="cern-opendata")
    for i, entry in enumerate(meta.get("files", [])):
        dataset.files.append(_file(entry, f"{where}: files[{i}]"))
    energy = energy_gev(str(collision.get("energy", "")))
    facets: dict[str, list[Any]] = {
        "facility": [str(meta.get("accelerator", "")).removeprefix("CERN-")],
        "experiment": [str(meta.get("experiment", ""))],
        "collision_system": [str(collision.get("type", ""))],
        "energy_gev": [energy] if energy else [],
        "data_level": sorted({_LEVELS[k] for k in kinds if k in _LEVELS})}
    apply_facets(dataset, {k: v for k, v in facets.items() if v and all(v)})
    dataset.record = {"publisher": str(meta.get("publisher", "CERN Open Data Portal")),
                      "landing_page": f"{PORTAL}{meta['recid']}",
                      "format": {"name": ", ".join(meta.get("distribution", {})
                                                   .get("formats", []))}}
    if doi:
        dataset.record["doi"] = doi
    session.add(dataset)
    dataset.record = dataset_record(dataset)
    validate_record(dataset.record)
    return (f"open data record {meta['recid']}: {dataset.title} ({len(dataset.files)} "
            f"file(s), {dataset.events} events)")


def import_opendata(path: Path, session: Session) -> list[str]:
    """Import every record in the JSON file ``path``; commits."""
    metas = _records(read_json(Path(path), "CERN Open Data record"), str(path))
    messages = [import_record(m, session, str(Path(path).resolve())) for m in metas]
    session.commit()
    return messages
