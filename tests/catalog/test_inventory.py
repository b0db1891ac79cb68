"""The inventory of real public datasets: file validation, metadata-only registration,
idempotence, updates in place, normalised facets and the CLI command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from npfm.catalog import search_index
from npfm.catalog.inventory import default_path, load_inventory, register_inventory
from npfm.catalog.models import Dataset, DatasetFacet, DatasetSearch, File, open_catalog
from npfm.catalog.standard import validate_record
from npfm.cli import app
from npfm.events.errors import NpfmError

RECORD = {"key": "toy-open-data", "title": "Toy open data", "creators": ["Toy Collaboration"],
          "publisher": "Zenodo", "facility": "hera", "experiment": "zeus",
          "collision_system": "e-p", "energy_gev": [318], "data_level": ["real"],
          "doi": "10.5281/zenodo.1234567", "landing_page": "https://doi.org/10.5281/zenodo.1234567",
          "license": "https://creativecommons.org/licenses/by/4.0/", "events": 42,
          "format": "ROOT (ntuples)",
          "description": "Deep inelastic electron-proton scattering events for a test of the "
                         "inventory loader.",
          "npfm_import": "Not supported yet: npfm has no reader for these ntuples.",
          "sources": ["https://example.org/toy"]}


def _write(path: Path, *records: dict) -> Path:
    path.write_text(yaml.safe_dump({"records": list(records)}), encoding="utf-8")
    return path


def test_shipped_inventory_is_valid_and_cites_its_sources() -> None:
    records = {r.key: r for r in load_inventory()}
    assert {"tpcpp-10m", "mit-aleph-archive"} <= set(records)
    assert records["tpcpp-10m"].doi == "10.5281/zenodo.16970029"
    assert records["tpcpp-10m"].landing_page == "https://doi.org/10.5281/zenodo.16970029"
    assert "format: fm4npp" in records["tpcpp-10m"].npfm_import
    assert "npfm import-aleph" in records["mit-aleph-archive"].npfm_import
    for record in records.values():
        assert record.sources
        assert all(s.startswith(("https://", "http://")) for s in record.sources)
        assert len(record.npfm_import) >= 20
        if record.doi is None:
            assert "doi" in record.notes.lower()  # says why there is none
        else:
            assert re.fullmatch(r"10\.\d{4,9}/\S+", record.doi)
    raw = yaml.safe_load(default_path().read_text())
    assert len(raw["records"]) == len(records)  # keys are unique


@pytest.mark.parametrize(("change", "message"), [
    ({"doi": "10.12/short"}, "doi"),
    ({"doi": None}, "do not say why"),
    ({"sources": ["opendata.cern.ch/record/1"]}, "not an http(s) URL"),
    ({"sources": []}, "sources"),
    ({"npfm_import": ""}, "npfm_import"),
    ({"data_level": ["events"]}, "unknown data level"),
    ({"energy_gev": [-1]}, "above 0"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_records_are_refused_naming_the_field(tmp_path: Path, change: dict,
                                                   message: str) -> None:
    record = {k: v for k, v in {**RECORD, **change}.items() if v is not None}
    with pytest.raises(NpfmError, match=re.escape(message)):
        load_inventory(_write(tmp_path / "inventory.yaml", record))


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NpfmError, match="used twice"):
        load_inventory(_write(tmp_path / "inventory.yaml", RECORD, RECORD))


def test_registration_is_metadata_only_and_idempotent(db_url: str) -> None:
    records = load_inventory()
    sessions = open_catalog(db_url)
    with sessions() as session:
        first = register_inventory(session)
        assert len(first) == len(records)
        generation = search_index.generation(session)
        facets = session.scalar(select(func.count(DatasetFacet.id)))
        again = register_inventory(session)
        assert all(m.endswith("already registered") for m in again)
        assert session.scalar(select(func.count(Dataset.id))) == len(records)
        assert session.scalar(select(func.count(DatasetFacet.id))) == facets
        assert session.scalar(select(func.count(File.id))) == 0
        assert search_index.generation(session) == generation  # nothing was written
        indexed = session.scalar(select(func.count(DatasetSearch.dataset_id)).where(
            DatasetSearch.embedding.is_not(None)))
        assert indexed == len(records)
        tpc = session.scalar(select(Dataset).where(Dataset.name == "tpcpp-10m"))
        assert tpc is not None
        assert (tpc.source, tpc.identifier, tpc.events) == (
            "inventory", "10.5281/zenodo.16970029", 10_000_000)
        assert (tpc.facility, tpc.experiment, tpc.collision_system, tpc.detector,
                tpc.energy_gev, tpc.data_level) == ("RHIC", "sPHENIX", "pp", "sphenix",
                                                    200.0, "simulated")
        assert {"sPHENIX", "RHIC", "pp", "simulated", "TPC"} <= set(tpc.keywords)
        assert tpc.record["doi"] == "10.5281/zenodo.16970029"
        assert "format: fm4npp" in tpc.record["npfm_import"]
        validate_record(tpc.record)
        aleph = session.scalar(select(Dataset).where(Dataset.name == "mit-aleph-archive"))
        assert aleph is not None
        assert "doi" not in aleph.record
        assert aleph.record["landing_page"] == "https://github.com/MITOpenData/e-e-_Analysis"
        assert {(f.facet, f.value) for f in aleph.facets} >= {
            ("experiment", "ALEPH"), ("collision_system", "e+e-"), ("energy_gev", "206.5"),
            ("data_level", "real-archived"), ("data_level", "simulated"),
            ("license", "NOASSERTION")}


def test_edited_record_is_updated_in_place(tmp_path: Path) -> None:
    path = _write(tmp_path / "inventory.yaml", RECORD)
    sessions = open_catalog(f"sqlite:///{tmp_path}/c.sqlite")
    with sessions() as session:
        assert register_inventory(session, path) == ["inventory record toy-open-data: "
                                                     "Toy open data"]
        dataset = session.scalar(select(Dataset))
        assert dataset is not None
        first_id = dataset.id
        assert (dataset.experiment, dataset.collision_system, dataset.facility) == (
            "ZEUS", "ep", "HERA")  # normalised spellings
        assert {(f.facet, f.value) for f in dataset.facets if f.facet == "license"} == {
            ("license", "CC-BY-4.0")}
        _write(path, {**RECORD, "title": "Toy open data, second version",
                      "energy_gev": [300, 318]})
        assert register_inventory(session, path) == ["inventory record toy-open-data "
                                                     "updated"]
        session.expire_all()
        dataset = session.scalar(select(Dataset))
        assert dataset is not None
        assert (dataset.id, dataset.title, dataset.energy_gev) == (
            first_id, "Toy open data, second version", None)  # two energies: no column
        assert sorted(f.value for f in dataset.facets if f.facet == "energy_gev") == [
            "300", "318"]
        assert session.scalar(select(func.count(Dataset.id))) == 1
        assert dataset.record["title"] == "Toy open data, second version"


def test_cli_registers_the_inventory_twice_without_duplicates(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/c.sqlite"
    for word in ("inventory record tpcpp-10m: TPCpp-10M", "already registered"):
        result = CliRunner().invoke(app, ["catalog", "register-inventory", "--db", db])
        assert result.exit_code == 0, result.output
        assert word in result.output
    result = CliRunner().invoke(app, ["catalog", "export", "tpcpp-10m", "--format", "fair",
                                      "--db", db])
    assert result.exit_code == 0, result.output
    assert '"doi"' not in result.output  # the DOI check passes: not listed as missing
    with open_catalog(db)() as session:
        assert session.scalar(select(func.count(Dataset.id))) == len(load_inventory())
