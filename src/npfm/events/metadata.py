"""AI-ready metadata of a corpus: DataCite-style citation, Croissant JSON-LD, W3C PROV.

Croissant 1.1 (mlcommons.org/croissant): one FileObject per shard with its sha256, a
FileSet over all shards, the record set ``events`` with a field per schema-1 column, and
one record set per schema-2 group (``cells``, ``cell_truth``, ``waveforms``, ``samples``:
one record per event, a repeated field per column, keyed by run and event).
PROV-JSON (w3.org/Submission/prov-json): the build activity, the software agent, the
inputs it used (with sha256) and the corpus it generated.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from prov.model import ProvDocument

import npfm
from npfm.events.schema import COLUMNS, SCHEMA_VERSION, Column, extension_column, group_columns

#: Record set of each schema-2 group (a cell's truth and waveforms index its cells).
GROUP_RECORD_SETS = {"cell": "cells", "cell_truth": "cell_truth", "waveform": "waveforms",
                     "sample": "samples"}


@dataclass(frozen=True)
class Citation:
    """DataCite-style citation fields of a corpus."""

    title: str
    creators: tuple[str, ...] = ("npfm developers",)
    publisher: str = "npfm"
    year: int = field(default_factory=lambda: dt.date.today().year)
    license: str = "https://creativecommons.org/licenses/by/4.0/"
    identifier: str = ""  # DOI or URN; filled from the corpus name when empty
    description: str = ""
    # Croissant RAI fields (empty: a generic statement is written)
    data_collection: str = ""
    data_biases: str = ""
    data_limitations: str = ""


@dataclass(frozen=True)
class Provenance:
    """How a corpus was made: the command, its configuration and its input files."""

    command: str
    config: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[dict[str, Any], ...] = ()  # each {"path": ..., "sha256": ..., "bytes": ...}


def code_version() -> dict[str, str]:
    """npfm version, and the git commit (with a dirty flag) when run from a checkout."""
    info = {"npfm": npfm.__version__}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                               check=True, capture_output=True, text=True, timeout=10).stdout
        info["git_commit"] = commit + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def datacite(citation: Citation, n_events: int) -> dict[str, Any]:
    """DataCite metadata-schema 4 fields, as JSON."""
    return {
        "identifiers": [{"identifier": citation.identifier, "identifierType":
                         "DOI" if citation.identifier.startswith("10.") else "URN"}],
        "creators": [{"name": name} for name in citation.creators],
        "titles": [{"title": citation.title}],
        "publisher": citation.publisher,
        "publicationYear": citation.year,
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": "npfm event corpus"},
        "rightsList": [{"rightsUri": citation.license}],
        "descriptions": [{"description": citation.description, "descriptionType": "Abstract"}],
        "sizes": [f"{n_events} events"],
        "formats": ["application/x-parquet"],
        "version": f"schema-{SCHEMA_VERSION}",
    }


_CONTEXT: dict[str, Any] = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract",
    "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key",
    "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex",
    "repeated": "cr:repeated", "replace": "cr:replace", "samplingRate": "cr:samplingRate",
    "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField",
    "transform": "cr:transform",
}


def _data_type(col: Column) -> str:
    t = col.type
    while pa.types.is_list(t):
        t = t.value_type
    if pa.types.is_floating(t):
        return "sc:Float"
    if pa.types.is_integer(t):
        return "sc:Integer"
    if pa.types.is_boolean(t):
        return "sc:Boolean"
    return "sc:Text"


def _field(col: Column, record_set: str = "events") -> dict[str, Any]:
    unit = f" [{col.unit}]" if col.unit else ""
    out: dict[str, Any] = {
        "@type": "cr:Field", "@id": f"{record_set}/{col.name}", "name": col.name,
        "description": col.doc + unit, "dataType": _data_type(col),
        "source": {"fileSet": {"@id": "shards"}, "extract": {"column": col.name}},
    }
    if col.level != "event" or pa.types.is_list(col.type):
        out["repeated"] = True
    return out


def croissant(citation: Citation, shards: list[dict[str, Any]], provenance: Provenance,
              n_events: int, extensions: dict[str, str] | None = None) -> dict[str, Any]:
    """Croissant 1.1 JSON-LD describing the shards and the ``events`` record set;
    ``extensions`` (column -> description) are repeated fields of ``events``."""
    files: list[dict[str, Any]] = [
        {"@type": "cr:FileObject", "@id": Path(s["path"]).stem, "name": Path(s["path"]).name,
         "contentUrl": s["path"], "encodingFormat": "application/x-parquet",
         "contentSize": f"{s['bytes']} B", "sha256": s["sha256"]} for s in shards
    ]
    files.append({"@type": "cr:FileSet", "@id": "shards", "name": "shards",
                  "encodingFormat": "application/x-parquet", "includes": "shards/*.parquet"})
    # Nested per-subsystem counts (list of lists) are not expressible as a Croissant field.
    fields = [_field(c) for c in COLUMNS if not pa.types.is_list(c.type)
              and c.level not in GROUP_RECORD_SETS]
    fields.append(_field(next(c for c in COLUMNS if c.name == "subsystems")))
    fields += [_field(extension_column(n, d)) for n, d in sorted((extensions or {}).items())]
    keys = [c for c in COLUMNS if c.name in ("run", "event")]
    groups = [{"@type": "cr:RecordSet", "@id": name, "name": name, "key": [
        {"@id": f"{name}/run"}, {"@id": f"{name}/event"}],
        "description": f"per event, the {group.replace('_', ' ')} lists (null before "
                       "schema 2 or without calorimeter readout)",
        "field": [_field(c, name) for c in (*keys, *group_columns(group))]}
        for group, name in GROUP_RECORD_SETS.items()]
    return {
        "@context": _CONTEXT, "@type": "sc:Dataset", "name": citation.title,
        "description": citation.description or citation.title,
        "conformsTo": "http://mlcommons.org/croissant/1.1",
        "citeAs": f"{', '.join(citation.creators)} ({citation.year}). {citation.title}. "
                  f"{citation.publisher}. {citation.identifier}",
        "creator": [{"@type": "sc:Person", "name": n} for n in citation.creators],
        "publisher": {"@type": "sc:Organization", "name": citation.publisher},
        "datePublished": str(citation.year), "license": citation.license,
        "identifier": citation.identifier, "url": citation.identifier,
        "version": f"{SCHEMA_VERSION}.0.0",
        "rai:dataCollection": citation.data_collection or (
            f"Produced by `{provenance.command}` from {len(provenance.inputs)} input "
            "file(s); see prov.json."),
        "rai:dataBiases": citation.data_biases or (
            "Not assessed for this corpus; simulated events inherit the generator tune and "
            "the fast simulation's approximations."),
        "rai:dataLimitations": citation.data_limitations or (
            "Units: cm, ns, GeV, T. Null marks a quantity not measured."),
        "distribution": files,
        "recordSet": [{"@type": "cr:RecordSet", "@id": "events", "name": "events",
                       "description": f"{n_events} events, one record per event",
                       "field": fields}, *groups],
    }


def prov(name: str, provenance: Provenance, started: str, ended: str,
         shards: list[dict[str, Any]]) -> dict[str, Any]:
    """W3C PROV document of the build (built with the ``prov`` package), as PROV-JSON.

    Every shard is an entity generated by the build activity and derived from its input
    files (those listed in its ``inputs`` entry, or else all of them); the activity
    (command, configuration, times) used the inputs and is associated with the software
    agent (npfm version, git commit).
    """
    doc = ProvDocument()
    doc.add_namespace("npfm", "urn:npfm:")
    version = code_version()
    activity = doc.activity(
        f"npfm:build/{name}", dt.datetime.fromisoformat(started),
        dt.datetime.fromisoformat(ended),
        {"npfm:command": provenance.command,
         "npfm:config": json.dumps(provenance.config, sort_keys=True, default=str)})
    agent = doc.agent(f"npfm:software/npfm-{version['npfm']}",
                      {"prov:type": "prov:SoftwareAgent",
                       **{f"npfm:{k}": v for k, v in version.items()}})
    doc.wasAssociatedWith(activity, agent)
    corpus = doc.entity(f"npfm:corpus/{name}", {"prov:type": "npfm:Corpus",
                                                 "npfm:schema_version": SCHEMA_VERSION})
    doc.wasGeneratedBy(corpus, activity)
    inputs = []
    for i, item in enumerate(provenance.inputs):
        entity = doc.entity(f"npfm:input/{i}", {
            "prov:type": "npfm:InputFile", "prov:label": str(item["path"]),
            "npfm:sha256": item["sha256"], "npfm:bytes": int(item["bytes"])})
        doc.used(activity, entity)
        inputs.append(entity)
    for shard in shards:
        entity = doc.entity(f"npfm:{name}/{shard['path']}", {
            "prov:type": "npfm:Shard", "npfm:sha256": shard["sha256"],
            "npfm:events": int(shard["events"])})
        doc.wasGeneratedBy(entity, activity)
        doc.hadMember(corpus, entity)
        # A shard may name the inputs it came from (indices into provenance.inputs).
        for i in shard.get("inputs", range(len(inputs))):
            doc.wasDerivedFrom(entity, inputs[i])
    text = doc.serialize(format="json")
    assert text is not None, "ProvDocument.serialize returns the text when given no file"
    result: dict[str, Any] = json.loads(text)
    return result


def citation_dict(citation: Citation) -> dict[str, Any]:
    out = asdict(citation)
    out["creators"] = list(citation.creators)
    return out
