"""The metadata standard (JSON Schema, records, FAIR score) and the four exports."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import mlcroissant as mlc
import pytest
from rocrate.rocrate import ROCrate
from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog import exports
from npfm.catalog.models import Dataset, open_catalog
from npfm.catalog.register import register
from npfm.catalog.standard import (
    SCHEMA_VERSION,
    dataset_record,
    fair_score,
    load_schema,
    validate_record,
)
from npfm.events.errors import NpfmError


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory,
        toy_corpus: Path) -> Iterator[tuple[Session, Dataset]]:
    """The toy corpus registered once for the module (the tests only read it)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('standard')}/c.sqlite"
    with open_catalog(url)() as session:
        register(toy_corpus, session)
        yield session, session.scalars(select(Dataset)).one()


def test_schema_is_versioned_and_records_validate(toy: tuple[Session, Dataset]) -> None:
    _, dataset = toy
    schema = load_schema()
    assert schema["properties"]["schema_version"] == {"const": SCHEMA_VERSION}
    record = dataset_record(dataset)
    validate_record(record)
    assert record["size"] == {"events": 12, "hits": dataset.hits, "files": 3,
                              "bytes": sum(f.bytes for f in dataset.files)}


@pytest.mark.parametrize(("change", "field"), [
    (lambda r: r.pop("license"), "'license' is a required property"),
    (lambda r: r["creators"][0].update(name=""), "creators/0/name"),
    (lambda r: r["files"][1].update(sha256="xyz"), "files/1/sha256"),
    (lambda r: r["facets"].update(data_level=["made-up"]), "facets/data_level/0"),
    (lambda r: r.update(colour="blue"), "'colour' was unexpected"),
])
def test_invalid_record_names_the_field(toy: tuple[Session, Dataset], change: object,
                                        field: str) -> None:
    record = copy.deepcopy(toy[1].record)
    change(record)  # type: ignore[operator]
    with pytest.raises(NpfmError, match="record field") as err:
        validate_record(record)
    assert field in str(err.value)


def test_fair_score_explains_what_is_missing(toy: tuple[Session, Dataset]) -> None:
    record = copy.deepcopy(toy[1].record)
    score = fair_score(record)
    # description and keywords are generated from the corpus at registration; a corpus
    # made by npfm has no DOI or landing page until it is published
    assert {m["field"] for m in score["missing"]} == {"doi", "landing_page"}
    assert all(m["why"].startswith(m["principle"]) for m in score["missing"])
    assert score["principles"]["I"] == score["principles"]["R"] == 1.0
    assert 0.5 < score["score"] < 1.0
    record.update(doi="10.5281/zenodo.1", keywords=["tracking"],
                  landing_page="https://example.org/toy",
                  description="A toy sPHENIX proton-proton corpus at 200 GeV for tests.")
    assert fair_score(record) == {"score": 1.0, "principles": dict.fromkeys("FAIR", 1.0),
                                  "missing": []}
    bare = {"schema_version": SCHEMA_VERSION, "files": [{"path": "x", "bytes": 1}]}
    assert fair_score(bare)["score"] == round(1 / 19, 3)  # only I1: weight 1 of 19
    assert len(fair_score(bare)["missing"]) == 14


def test_croissant_export_is_read_by_mlcroissant(toy: tuple[Session, Dataset],
                                                 tmp_path: Path) -> None:
    _, dataset = toy
    doc = exports.croissant(dataset)
    assert {d["sha256"] for d in doc["distribution"] if "sha256" in d} == {
        f.sha256 for f in dataset.files}
    # contentUrl is relative to the corpus: put the export where the shards are
    out = Path(dataset.path) / "catalog-croissant.json"
    out.write_text(json.dumps(doc))
    try:
        records = list(itertools.islice(mlc.Dataset(str(out)).records("events"), 12))
    finally:
        out.unlink()
    assert len(records) == 12
    assert {r["events/experiment"] for r in records} == {b"sPHENIX"}


def test_datacite_and_schema_org(toy: tuple[Session, Dataset]) -> None:
    _, dataset = toy
    cite = exports.datacite(dataset)
    assert cite["identifiers"] == [{"identifier": "urn:npfm:corpus:toy",
                                    "identifierType": "URN"}]
    assert {"subject": "experiment: sPHENIX"} in cite["subjects"]
    assert {"subject": "energy_gev: 200.0"} in cite["subjects"]
    assert cite["relatedIdentifiers"][0]["relationType"] == "IsDerivedFrom"
    page = exports.schema_org_jsonld(dataset)
    assert (page["@context"], page["@type"]) == ("https://schema.org/", "Dataset")
    assert len(page["description"]) >= 50  # composed from the facets when empty
    assert "sPHENIX" in page["description"]
    assert "200 GeV" in page["description"]
    assert [d["contentUrl"] for d in page["distribution"]] == [
        f.replicas[0].url for f in dataset.files]
    assert page["variableMeasured"][0] == {"@type": "PropertyValue", "name": "sqrt(s)",
                                           "unitText": "GeV", "value": 200.0}


def test_ro_crate_is_readable_by_rocrate(toy: tuple[Session, Dataset], tmp_path: Path) -> None:
    _, dataset = toy
    out = exports.ro_crate(dataset, tmp_path / "crate")
    crate = ROCrate(out)
    assert crate.name == "toy corpus"
    assert crate.root_dataset["license"] == dataset.license
    by_sha = {e.properties().get("sha256") for e in crate.data_entities}
    assert {f.sha256 for f in dataset.files} <= by_sha
    record = json.loads((out / "metadata" / "npfm-record.json").read_text())
    validate_record(record)
    with pytest.raises(NpfmError, match="not empty"):
        exports.ro_crate(dataset, out)


def test_lattice_ensemble_row_gets_a_valid_record() -> None:
    """A Dataset as the lattice-ensemble registrar writes it (source ildg, QCDml record)."""
    dataset = Dataset(name="wilson-b6.0", title="Quenched SU(3) ensemble", identifier=
                      "urn:npfm:lqcd:wilson-b6.0", schema_version=1, events=2, hits=0,
                      license="https://creativecommons.org/licenses/by/4.0/",
                      creators=["npfm developers"], created="2026-11-22", path="/x",
                      manifest_sha256="e" * 64, source="ildg", facility="lattice",
                      data_level="gauge-configurations", description="", keywords=["ILDG"],
                      record={"markovChainURI": "urn:npfm:lqcd:wilson-b6.0"})
    record = dataset_record(dataset)
    validate_record(record)
    assert record["facets"] == {"facility": ["lattice"],
                                "data_level": ["gauge-configurations"]}
    assert "markovChainURI" not in record  # only standard fields
    assert "facets.data_level" not in {m["field"] for m in fair_score(record)["missing"]}
