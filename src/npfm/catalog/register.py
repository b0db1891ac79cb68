"""Register what a path holds in the catalog, reading its own metadata (no retyping).

``register(path, session)`` recognises a corpus directory (``manifest.json``), a lattice
QCD ensemble directory (``ensemble.json``), a pretraining run (``checkpoints/latest``), a
geometry YAML file, a benchmark results JSON (``{"results": [...]}``) and a standalone
PROV-JSON document, adds its rows and returns one-line messages of what was added.
Registering the same thing again adds nothing. A corpus gets its search facets from its
shards' event-level columns and its standard metadata record (``standard``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.content import GENERIC, corpus_content, describe
from npfm.catalog.edges import add_edge
from npfm.catalog.facets import apply_facets, corpus_facets
from npfm.catalog.federation import checksums
from npfm.catalog.inputs import ManifestInput, RegisterInput, parse
from npfm.catalog.models import Checkpoint, Dataset, File, Geometry, Replica
from npfm.catalog.results import is_results, register_results
from npfm.catalog.standard import dataset_record, validate_record
from npfm.detectors import load_geometry
from npfm.events.errors import NpfmError
from npfm.events.shards import read_json, sha256_file
from npfm.train import checkpoint as ckpt


def register(path: Path, session: Session,
             progress: Callable[[int], None] | None = None) -> list[str]:
    """Detect what ``path`` is, add it to the catalog and commit; returns messages.

    ``progress(n_bytes)`` is called while a corpus's shards are read for their adler32.
    """
    path = parse(RegisterInput, "register", path=Path(path)).path
    if (path / "manifest.json").is_file():
        messages = register_corpus(path, session, progress)
    elif (path / "ensemble.json").is_file():
        from npfm.catalog.lqcd_ensembles import register_ensemble  # optional module

        messages = list(register_ensemble(path, session))
    elif (path / "checkpoints" / "latest").is_file():
        messages = register_run(path, session)
    elif path.is_file() and path.suffix in (".yaml", ".yml"):
        messages = register_geometry(path, session)
    elif path.is_file() and path.suffix == ".json" and _is_prov(path):
        messages = register_prov(path, session)
    elif path.is_file() and path.suffix == ".json" and is_results(_json(path)):
        messages = register_results(path, session)
    else:
        raise NpfmError(str(path), "not a corpus directory, ensemble directory, pretraining "
                        "run, geometry YAML, results JSON or PROV-JSON file",
                        "pass one of those (a corpus directory holds manifest.json, a run "
                        "checkpoints/latest)")
    session.commit()
    return messages


def register_corpus(path: Path, session: Session,
                    progress: Callable[[int], None] | None = None) -> list[str]:
    """A corpus directory: one Dataset, one File (with a local Replica) per shard."""
    manifest_path = path / "manifest.json"
    digest = sha256_file(manifest_path)
    found = session.scalar(select(Dataset).where(Dataset.manifest_sha256 == digest))
    if found is not None:
        return [f"dataset {found.name} already registered (manifest sha256 {digest[:12]})"]
    manifest = read_json(manifest_path, "corpus manifest")
    if not isinstance(manifest, dict):
        raise NpfmError(str(manifest_path), "not a JSON object", "rewrite the corpus")
    parse(ManifestInput, str(manifest_path), **manifest)
    citation = manifest.get("citation", {})
    root = path.resolve()
    dataset = Dataset(
        name=manifest["name"], title=citation.get("title", manifest["name"]),
        identifier=citation.get("identifier", ""), schema_version=manifest["schema_version"],
        events=manifest["events"], hits=manifest["hits"], license=citation.get("license", ""),
        creators=list(citation.get("creators", [])), created=manifest["created"],
        path=str(root), manifest_sha256=digest, description=citation.get("description", ""),
        keywords=list(citation.get("keywords", [])), source="npfm")
    for shard in manifest["shards"]:
        url = (root / shard["path"]).as_uri()
        adler, _ = checksums(url, progress)
        file = File(path=shard["path"], sha256=shard["sha256"], bytes=shard["bytes"],
                    events=shard["events"], adler32=adler)
        file.replicas.append(Replica(site="local", url=url, status="available",
                                     adler32=adler, sha256=shard["sha256"]))
        dataset.files.append(file)
    facets = corpus_facets(root, [s["path"] for s in manifest["shards"]])
    apply_facets(dataset, facets)
    content = corpus_content(root)
    text, keywords, terms = describe(content, facets)
    given = dataset.description.strip()
    dataset.description = text if given in GENERIC else f"{given} {text}"
    dataset.keywords = list(dict.fromkeys([*dataset.keywords, *keywords]))
    dataset.record = {"publisher": citation.get("publisher", "npfm"),
                      "content": {**content, "search_terms": terms},
                      "publication_year": citation.get("year"),
                      "format": {"name": manifest.get("format", "npfm-corpus"),
                                 "schema_version": manifest["schema_version"],
                                 "media_type": "application/x-parquet"},
                      "provenance": _provenance(root, manifest, digest)}
    if dataset.record["publication_year"] is None:
        del dataset.record["publication_year"]
    session.add(dataset)
    dataset.record = dataset_record(dataset)
    validate_record(dataset.record)
    return [f"dataset {dataset.name}: {len(dataset.files)} file(s), {dataset.events} events "
            f"(manifest sha256 {digest[:12]})"]


def _provenance(root: Path, manifest: dict[str, Any], digest: str) -> dict[str, Any]:
    """Command, code version and inputs (with sha256) from the corpus's PROV document."""
    out: dict[str, Any] = {"code_version": {k: str(v) for k, v in
                                            manifest.get("code_version", {}).items()},
                           "manifest_sha256": digest}
    prov_name = manifest.get("files", {}).get("provenance", "prov.json")
    doc = _json(root / prov_name) if (root / prov_name).is_file() else None
    if isinstance(doc, dict):
        for activity in doc.get("activity", {}).values():
            if "npfm:command" in activity:
                out["command"] = str(activity["npfm:command"])
        out["inputs"] = [{"path": str(e.get("prov:label", "")), "sha256": e["npfm:sha256"],
                          "bytes": int(_literal(e.get("npfm:bytes", 0)))}
                         for e in doc.get("entity", {}).values()
                         if e.get("prov:type") == "npfm:InputFile"
                         and isinstance(e.get("npfm:sha256"), str)]
    return out


def _corpus_paths(config: dict[str, Any], run: Path) -> Iterator[Path]:
    """Resolved corpus paths of a pretraining config (relative ones: to the run or cwd),
    with those of the earlier configs a resumed run recorded (``history``)."""
    earlier = [c for h in config.get("history", []) for c in h["config"].get("corpora", [])]
    for entry in [*config.get("corpora", []), *earlier]:
        raw = Path(entry["path"] if isinstance(entry, dict) else entry)
        if raw.is_absolute() or not (run / raw).exists():
            yield raw.resolve()
        else:
            yield (run / raw).resolve()


def register_run(path: Path, session: Session) -> list[str]:
    """A run's latest checkpoint, with ``trained_on`` edges to its registered corpora."""
    latest = ckpt.latest(path)
    assert latest is not None, "register() checked that checkpoints/latest exists"
    digest = sha256_file(latest / "model.safetensors")
    messages = []
    found = session.scalar(select(Checkpoint).where(Checkpoint.model_sha256 == digest))
    config = json.loads((latest / "config.json").read_text())
    if found is None:
        session.add(Checkpoint(run_path=str(path.resolve()), step=int(latest.name[5:]),
                               model_sha256=digest, config=config))
        messages.append(f"checkpoint {latest.name} of {path} (model sha256 {digest[:12]})")
    else:
        messages.append(f"checkpoint {latest.name} already registered "
                        f"(model sha256 {digest[:12]})")
    for corpus in _corpus_paths(config, path):
        dataset = session.scalar(select(Dataset).where(Dataset.path == str(corpus))
                                 .order_by(Dataset.id.desc()))
        if dataset is None:
            messages.append(f"corpus {corpus} is not registered; no trained_on edge "
                            "(register it, then the run again)")
        elif add_edge(session, "checkpoint", digest, "dataset", dataset.manifest_sha256,
                       "trained_on"):
            messages.append(f"edge: checkpoint {latest.name} trained_on dataset {dataset.name}")
    return messages


def register_geometry(path: Path, session: Session) -> list[str]:
    """A detector geometry YAML file, validated by ``load_geometry``."""
    geometry = load_geometry(str(path))
    digest = sha256_file(path)
    if session.scalar(select(Geometry).where(Geometry.sha256 == digest)) is not None:
        return [f"geometry {geometry.id} v{geometry.version} already registered"]
    session.add(Geometry(geometry_id=geometry.id, version=geometry.version,
                         experiment=geometry.experiment, path=str(path.resolve()),
                         sha256=digest))
    return [f"geometry {geometry.id} v{geometry.version} ({geometry.experiment}, "
            f"sha256 {digest[:12]})"]


def _literal(value: Any) -> Any:
    """A PROV-JSON typed literal ``{"$": v, "type": t}`` -> v."""
    return value.get("$") if isinstance(value, dict) else value


def _json(path: Path) -> Any:
    """The parsed JSON of ``path``, or None if it is unreadable or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _is_prov(path: Path) -> bool:
    doc = _json(path)
    return isinstance(doc, dict) and "entity" in doc and "prefix" in doc


def register_prov(path: Path, session: Session) -> list[str]:
    """``derived_from`` edges between the sha256s of a PROV-JSON document's entities."""
    doc = read_json(path, "PROV-JSON document")
    sha = {key: attrs.get("npfm:sha256") for key, attrs in doc.get("entity", {}).items()}
    added = 0
    for relation in doc.get("wasDerivedFrom", {}).values():
        source = sha.get(relation.get("prov:generatedEntity"))
        target = sha.get(relation.get("prov:usedEntity"))
        if isinstance(source, str) and isinstance(target, str):
            added += add_edge(session, "sha256", source, "sha256", target, "derived_from")
    return [f"{path}: {added} derived_from edge(s) between entity sha256s"]
