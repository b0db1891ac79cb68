"""The catalog commands as a person runs them: register, locate, export, verify, sites,
replicas, tokens and CERN Open Data import."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_toy_corpus
from typer.testing import CliRunner

from npfm.cli import app

RECORD = Path(__file__).parent / "data" / "opendata-record.json"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_register_locate_export_verify(tmp_path: Path) -> None:
    corpus = write_toy_corpus(tmp_path / "toy")
    db = f"sqlite:///{tmp_path}/c.sqlite"
    code, out = run("catalog", "register", str(corpus), "--db", db)
    assert code == 0
    assert "3 file(s), 12 events" in out
    code, out = run("locate", "toy", "--db", db)
    assert code == 0
    assert [line.split("\t")[1] for line in out.splitlines()] == ["local"] * 3
    assert out.splitlines()[0].endswith((corpus / "shards/part-00000.parquet").as_uri())
    for fmt, key in (("record", "schema_version"), ("croissant", "recordSet"),
                     ("datacite", "identifiers"), ("schema-org", "distribution"),
                     ("fair", "missing")):
        out_file = tmp_path / f"{fmt}.json"
        code, out = run("catalog", "export", "toy", "--format", fmt, "--out", str(out_file),
                        "--db", db)
        assert code == 0, out
        assert key in json.loads(out_file.read_text())
    code, out = run("catalog", "export", "toy", "--format", "ro-crate", "--out",
                    str(tmp_path / "crate"), "--db", db)
    assert code == 0
    assert (tmp_path / "crate" / "ro-crate-metadata.json").is_file()
    code, out = run("catalog", "verify", "toy", "--db", db)
    assert code == 0
    assert "3 replica(s) checked: 3 ok, 0 bad, 0 missing" in out
    (corpus / "shards/part-00002.parquet").write_bytes(b"not parquet")
    code, out = run("catalog", "verify", "--db", db)
    assert code == 1
    assert "1 bad" in out


def test_sites_replicas_tokens_and_opendata(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/c.sqlite"
    code, out = run("catalog", "import-opendata", str(RECORD), "--db", db)
    assert code == 0
    assert "99001" in out
    code, out = run("catalog", "site", "add", "mirror", "file:///srv/mirror", "--priority",
                    "5", "--db", db)
    assert code == 0
    assert "priority 5" in out
    name = "/ZeroBias/Run2099Z-Example-v1/AOD"
    path = "eos/opendata/cms/Run2099Z/ZeroBias/AOD/file-0001.root"
    code, out = run("catalog", "replica", "add", name, path, "mirror",
                    "file:///srv/mirror/file-0001.root", "--db", db)
    assert code == 0
    assert "at mirror" in out
    code, out = run("catalog", "token", "create", "ci", "--scope", "register", "--scope",
                    "replica", "--db", db)
    assert code == 0
    assert out.strip().startswith("npfm_")
    code, out = run("catalog", "token", "revoke", "ci", "--db", db)
    assert code == 0
    assert "token ci revoked" in out
    code, out = run("catalog", "token", "revoke", "nobody", "--db", db)
    assert code == 2
    assert "token nobody: no such token" in out
    code, out = run("catalog", "token", "create", "ci2", "--scope", "root", "--db", db)
    assert code == 2
    assert "npfm: error: token: field scopes.0" in out
    code, out = run("locate", name, "--db", db)  # nothing at the mirror, root:// not probed
    assert code == 2
    assert "no reachable replica (tried: mirror, eospublic.cern.ch)" in out
    code, out = run("catalog", "export", "nope", "--db", db)
    assert code == 2
    assert "dataset nope: not in the catalog" in out
