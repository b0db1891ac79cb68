"""The Rucio mapping (DIDs, RSE choice from ``list_replicas`` output) and the client.

No Rucio server runs here: the mapping functions are tested on data in the documented
``Client.list_replicas`` format, with real file:// PFNs, and the real rucio-clients
``Client`` is shown to fail cleanly when its server is unreachable.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from npfm.catalog.federation import checksums
from npfm.catalog.models import Dataset, open_catalog
from npfm.catalog.register import register
from npfm.catalog.rucio import (
    RucioFederation,
    choose,
    dataset_did,
    did_name,
    file_did,
    replicas_from_listing,
)
from npfm.events.errors import NpfmError


def test_dids_follow_rucio_naming(tmp_path: Path, toy_corpus: Path) -> None:
    assert did_name("mixed-sim/shards/part-00000.parquet") == "mixed-sim.shards.part-00000.parquet"
    assert did_name("x'; DROP TABLE dataset;--") == "x___DROP_TABLE_dataset_--"
    assert len(did_name("a" * 400)) == 250
    with pytest.raises(NpfmError, match="nothing usable"):
        did_name("///")
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        register(toy_corpus, session)
        dataset = session.scalars(select(Dataset)).one()
        assert dataset_did("npfm", dataset) == {"scope": "npfm", "name": "toy"}
        file = dataset.files[0]
        assert file_did("npfm", dataset, file) == {
            "scope": "npfm", "name": "toy.shards.part-00000.parquet", "bytes": file.bytes,
            "adler32": file.adler32, "meta": {"sha256": file.sha256}}


def test_choose_prefers_available_reachable_replicas_by_site_priority(
        toy_corpus: Path, tmp_path: Path) -> None:
    shard = toy_corpus / "shards" / "part-00000.parquet"
    adler, _ = checksums(shard.as_uri())
    listing = [{  # the shape of rucio.client.Client.list_replicas items
        "scope": "npfm", "name": "toy.shards.part-00000.parquet", "bytes": shard.stat().st_size,
        "adler32": adler, "md5": None,
        "rses": {"CERN_DISK": [(tmp_path / "gone.parquet").as_uri()],
                 "BNL_DISK": [shard.as_uri()], "DESY_TAPE": [shard.as_uri()]},
        "states": {"CERN_DISK": "AVAILABLE", "BNL_DISK": "AVAILABLE",
                   "DESY_TAPE": "UNAVAILABLE"}}]
    replicas = replicas_from_listing(listing)
    assert {(r.rse, r.state) for r in replicas} == {
        ("CERN_DISK", "AVAILABLE"), ("BNL_DISK", "AVAILABLE"), ("DESY_TAPE", "UNAVAILABLE")}
    chosen = choose(replicas, {"DESY_TAPE": 1, "CERN_DISK": 5, "BNL_DISK": 50})
    assert chosen["npfm:toy.shards.part-00000.parquet"].rse == "BNL_DISK"
    assert chosen["npfm:toy.shards.part-00000.parquet"].adler32 == adler


def test_unreachable_rucio_server_is_a_clean_error(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "rucio.cfg"
    config.write_text("[client]\nrucio_host = http://127.0.0.1:9\nauth_host = "
                      "http://127.0.0.1:9\nauth_type = userpass\naccount = root\n"
                      "username = ddmlab\npassword = secret\n"
                      f"auth_token_file_path = {tmp_path}/token/auth_token\n")  # no cache
    monkeypatch.setenv("RUCIO_CONFIG", str(config))
    with pytest.raises(NpfmError, match="Rucio backend: cannot connect: Cannot connect to the "
                       "Rucio server"):
        RucioFederation("npfm", rucio_host="http://127.0.0.1:9",
                        auth_host="http://127.0.0.1:9", account="root",
                        auth_type="userpass", creds={"username": "ddmlab",
                                                     "password": "secret"}, timeout=2)
