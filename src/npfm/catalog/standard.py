"""The npfm dataset metadata standard: a versioned JSON Schema, records and FAIR scores.

``dataset_record`` turns a catalog Dataset into a record of schema
``npfm-dataset-1.0`` (``schema/npfm-dataset-1.0.schema.json``, described in
docs/metadata-standard.md); ``validate_record`` checks one; ``fair_score`` says how
complete it is against the FAIR principles (Wilkinson et al., Sci. Data 3 (2016) 160018,
doi:10.1038/sdata.2016.18) and what is missing.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema

from npfm.catalog.models import Dataset
from npfm.events.errors import NpfmError

SCHEMA_VERSION = "1.0"
SCHEMA_FILE = f"npfm-dataset-{SCHEMA_VERSION}.schema.json"
FACETS = ("facility", "experiment", "collision_system", "energy_gev", "detector",
          "data_level")
#: Keys of ``Dataset.record`` that only registration knows (not held in columns).
_CARRIED = ("doi", "publisher", "publication_year", "landing_page", "format", "provenance",
            "related", "content", "npfm_import", "sources", "notes")


@functools.cache
def _schema_text() -> str:
    return (resources.files("npfm.catalog") / "schema" / SCHEMA_FILE).read_text()


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the current standard version (a fresh copy)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema())


@functools.cache
def data_levels() -> frozenset[str]:
    """The data levels the schema allows (the vocabulary of facet ``data_level``)."""
    levels = load_schema()["properties"]["facets"]["properties"]["data_level"]["items"]
    return frozenset(levels["enum"])


def validate_record(record: dict[str, Any]) -> None:
    """Raise NpfmError naming the first offending field if ``record`` breaks the schema."""
    errors = sorted(_validator().iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        where = "/".join(str(p) for p in error.absolute_path) or "(record)"
        raise NpfmError(f"record field {where}", error.message,
                        f"follow {SCHEMA_FILE} (docs/metadata-standard.md)")


def _creators(raw: list[Any]) -> list[dict[str, str]]:
    out = []
    for item in raw:
        if isinstance(item, dict) and item.get("name"):
            out.append({k: str(v) for k, v in item.items()
                        if k in ("name", "affiliation", "orcid") and v})
        elif isinstance(item, str) and item:
            out.append({"name": item})
    return out


def facet_values(dataset: Dataset) -> dict[str, list[Any]]:
    """Every facet's values: the DatasetFacet rows, else the single-valued columns."""
    values: dict[str, list[Any]] = {}
    for facet in dataset.facets:
        if facet.facet in FACETS:
            values.setdefault(facet.facet, []).append(
                float(facet.value) if facet.facet == "energy_gev" else facet.value)
    for name in FACETS:
        column = getattr(dataset, name)
        if name not in values and column is not None:
            values[name] = [column]
    return {k: sorted(set(v)) for k, v in values.items()}


def dataset_record(dataset: Dataset) -> dict[str, Any]:
    """The standard record of ``dataset`` (columns, facets, files, carried metadata)."""
    previous = dataset.record or {}
    record: dict[str, Any] = {k: previous[k] for k in _CARRIED if k in previous}
    files = []
    for file in dataset.files:
        entry: dict[str, Any] = {"path": file.path, "bytes": file.bytes}
        if file.events:
            entry["events"] = file.events
        if file.sha256:
            entry["sha256"] = file.sha256
        if file.adler32:
            entry["adler32"] = file.adler32
        if file.replicas:
            entry["url"] = file.replicas[0].url
        files.append(entry)
    record.update({
        "schema_version": SCHEMA_VERSION, "identifier": dataset.identifier or
        f"urn:npfm:dataset:{dataset.manifest_sha256}", "name": dataset.name,
        "title": dataset.title, "description": dataset.description or "",
        "creators": _creators(dataset.creators), "created": dataset.created,
        "license": dataset.license, "keywords": list(dataset.keywords or []),
        "source": dataset.source,
        "size": {"events": dataset.events, "hits": dataset.hits, "files": len(files),
                 "bytes": sum(f["bytes"] for f in files)},
        "facets": facet_values(dataset), "files": files,
    })
    return record


def _check(ok: bool, principle: str, field: str, why: str, weight: float = 1.0
           ) -> tuple[bool, str, str, str, float]:
    return ok, principle, field, why, weight


def _checks(record: dict[str, Any]) -> list[tuple[bool, str, str, str, float]]:
    facets = record.get("facets", {})
    files = record.get("files", [])
    prov = record.get("provenance", {})
    identifier = str(record.get("identifier", ""))
    license_ = str(record.get("license", ""))
    known_levels = data_levels()
    return [
        _check(bool(identifier), "F", "identifier", "F1: a globally unique identifier lets "
               "others cite and find the data", 2),
        _check(identifier.startswith("10.") or bool(record.get("doi")), "F", "doi",
               "F1: a DOI is resolvable and persistent; a URN is only unique"),
        _check(len(str(record.get("description", ""))) >= 50, "F", "description",
               "F2: a description of at least 50 characters makes full-text search work"),
        _check(bool(record.get("keywords")), "F", "keywords",
               "F2: keywords feed search and curation"),
        _check(bool(files) and all(f.get("sha256") or f.get("adler32") for f in files), "F",
               "files[].sha256", "F3: file checksums tie the metadata to the exact data"),
        _check(bool(files) and all(f.get("url") for f in files), "A", "files[].url",
               "A1: every file needs a retrievable location (file://, https://, root://)", 2),
        _check(bool(record.get("landing_page") or record.get("doi")), "A", "landing_page",
               "A2: a landing page keeps the metadata reachable if the data moves"),
        _check(record.get("schema_version") == SCHEMA_VERSION, "I", "schema_version",
               "I1: a formal, versioned schema lets machines read the record"),
        _check(bool(facets.get("experiment")) and bool(facets.get("facility")), "I",
               "facets.experiment", "I2: experiment and facility names from the shared "
               "vocabulary make data sets comparable"),
        _check(bool(facets.get("data_level")) and set(facets.get("data_level", []))
               <= known_levels, "I", "facets.data_level",
               "I2: a data level from the vocabulary (simulated, real, ...) says what it is"),
        _check(bool(prov.get("inputs")) or bool(record.get("related")), "I", "provenance.inputs",
               "I3: qualified references to the inputs (with checksums) link the data"),
        _check(license_.startswith(("http://", "https://")), "R", "license",
               "R1.1: a licence URI states clearly how the data may be reused", 2),
        _check(bool(prov.get("command") or prov.get("code_version")), "R", "provenance",
               "R1.2: the producing command and code version make the data reproducible", 2),
        _check(bool(facets.get("collision_system")) and bool(facets.get("energy_gev")), "R",
               "facets.energy_gev", "R1.3: collision system and sqrt(s) are the community's "
               "minimum to reuse collider data"),
        _check(bool(facets.get("detector")), "R", "facets.detector",
               "R1.3: the detector geometry is needed to interpret hits"),
    ]


def fair_score(record: dict[str, Any]) -> dict[str, Any]:
    """FAIR completeness: ``score`` in 0..1, per-principle scores, and what is missing.

    Each check has a weight (2 for the essential ones); ``missing`` lists
    ``{"principle", "field", "why"}`` for every failed check.
    """
    checks = _checks(record)
    total = sum(w for *_, w in checks)
    by_principle: dict[str, list[float]] = {p: [0.0, 0.0] for p in "FAIR"}
    missing = []
    for ok, principle, field, why, weight in checks:
        by_principle[principle][1] += weight
        if ok:
            by_principle[principle][0] += weight
        else:
            missing.append({"principle": principle, "field": field, "why": why})
    return {"score": round(sum(w for ok, *_, w in checks if ok) / total, 3),
            "principles": {p: round(got / of, 3) for p, (got, of) in by_principle.items()},
            "missing": missing}
