"""Import of CERN Open Data portal record JSON.

``data/opendata-record.json`` was written for these tests in the portal's record format
(the JSON of https://opendata.cern.ch/api/records/<recid>); its recid, DOI, checksums and
URIs are invented, as its ``_comment`` says.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlcroissant as mlc
import pytest
from sqlalchemy import select

from npfm.catalog import exports
from npfm.catalog.federation import checksums, verify
from npfm.catalog.models import Dataset, Replica, open_catalog
from npfm.catalog.opendata import energy_gev, import_opendata
from npfm.catalog.standard import fair_score
from npfm.events.errors import NpfmError

RECORD = Path(__file__).parent / "data" / "opendata-record.json"


def test_record_becomes_dataset_files_and_replicas(db_url: str, tmp_path: Path) -> None:
    meta = json.loads(RECORD.read_text())["metadata"]
    with open_catalog(db_url)() as session:
        (message,) = import_opendata(RECORD, session)
        assert "99001" in message
        assert "2 file(s), 1500 events" in message
        dataset = session.scalars(select(Dataset)).one()
        assert (dataset.source, dataset.identifier, dataset.license) == (
            "cern-opendata", "10.7483/OPENDATA.CMS.TEST.0001",
            "https://creativecommons.org/publicdomain/zero/1.0/")
        assert (dataset.facility, dataset.experiment, dataset.collision_system,
                dataset.energy_gev, dataset.data_level) == ("LHC", "CMS", "pp", 13000.0,
                                                            "real")
        replicas = session.scalars(select(Replica).order_by(Replica.id)).all()
        assert [(r.url, r.adler32, r.site) for r in replicas] == [
            (f["uri"], f["checksum"].split(":")[1], "eospublic.cern.ch") for f in meta["files"]]
        assert [f.bytes for f in dataset.files] == [f["size"] for f in meta["files"]]
        assert dataset.record["landing_page"] == "https://opendata.cern.ch/record/99001"
        score = fair_score(dataset.record)
        assert score["principles"]["F"] == 1.0
        assert score["principles"]["A"] == 1.0
        assert "facets.detector" in {m["field"] for m in score["missing"]}
        assert exports.datacite(dataset)["identifiers"][0]["identifierType"] == "DOI"
        with pytest.raises(NpfmError, match=r"no sha256 \(2 file\(s\)\); Croissant needs one"):
            exports.croissant(dataset)  # adler32 alone: not enough for Croissant
        crate = exports.ro_crate(dataset, tmp_path / "crate")
        assert sorted(p.name for p in (crate / "metadata").iterdir()) == [
            "datacite.json", "npfm-record.json"]
        report = verify(session, dataset.name)  # root:// cannot be read here: left alone
        assert (report.checked, report.skipped) == (0, [f["uri"] for f in meta["files"]])
        assert {r.status for r in session.scalars(select(Replica))} == {"available"}
        assert "already registered" in import_opendata(RECORD, session)[0]
        assert len(session.scalars(select(Dataset)).all()) == 1


def test_record_without_title_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"metadata": {"recid": "1"}}))
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session, \
            pytest.raises(NpfmError, match=r"record 0: no metadata.title"):
        import_opendata(bad, session)


@pytest.mark.parametrize(("text", "gev"), [("13TeV", 13000.0), ("5.02TeV", 5020.0),
                                           ("200GeV", 200.0), ("91.2 GeV", 91.2),
                                           ("", None), ("fast", None)])
def test_energy_strings(text: str, gev: float | None) -> None:
    assert energy_gev(text) == pytest.approx(gev) if gev else energy_gev(text) is None


def test_verified_open_data_files_export_valid_croissant(tmp_path: Path) -> None:
    """A record whose files are readable here: verify learns their sha256, after which
    the Croissant export passes mlcroissant's validation."""
    meta = json.loads(RECORD.read_text())["metadata"]
    for i, entry in enumerate(meta["files"]):
        data = (tmp_path / f"f{i}.root")
        data.write_bytes(bytes(range(256)) * (i + 1))
        entry.update(uri=data.as_uri(), size=data.stat().st_size,
                     checksum=f"adler32:{checksums(data.as_uri())[0]}")
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"metadata": meta}))
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        import_opendata(record, session)
        dataset = session.scalars(select(Dataset)).one()
        report = verify(session, dataset.name)
        assert (report.checked, report.ok, report.bad) == (2, 2, [])
        assert [f.sha256 for f in dataset.files] == [
            checksums(f["uri"])[1] for f in meta["files"]]
        doc = exports.croissant(dataset)
    metadata = mlc.Dataset(jsonld=doc).metadata
    assert [d.name for d in metadata.distribution] == ["f0.root", "f1.root"]
