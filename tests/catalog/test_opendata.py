"""Import of CERN Open Data portal record JSON.

``data/opendata-record.json`` was written for these tests in the portal's record format
(the JSON of https://opendata.cern.ch/api/records/<recid>); its recid, DOI, checksums and
URIs are invented, as its ``_comment`` says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from npfm.catalog import exports
from npfm.catalog.federation import verify
from npfm.catalog.models import Dataset, Replica, open_catalog
from npfm.catalog.opendata import energy_gev, import_opendata
from npfm.catalog.standard import fair_score
from npfm.events.errors import NpfmError

RECORD = Path(__file__).parent / "data" / "opendata-record.json"


def test_record_becomes_dataset_files_and_replicas(db_url: str) -> None:
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
        assert "recordSet" not in exports.croissant(dataset)
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
