"""Attacks on the catalog's write paths: SQL injection, token theft and misuse, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import write_toy_corpus
from sqlalchemy import inspect, select, text

from npfm.catalog import exports
from npfm.catalog.federation import add_site, find_dataset, locate
from npfm.catalog.models import ApiToken, Base, Dataset, Site, open_catalog
from npfm.catalog.register import register
from npfm.catalog.tokens import check_token, create_token, revoke_token
from npfm.events.errors import NpfmError

HOSTILE = "x'; DROP TABLE dataset;--"


def test_hostile_name_is_stored_and_found_verbatim(db_url: str) -> None:
    factory = open_catalog(db_url)
    with factory() as session:
        session.add(Dataset(name=HOSTILE, title=HOSTILE, identifier="urn:x'--",
                            schema_version=1, events=1, hits=1, license="CC0", creators=[],
                            created="2026", path="/tmp/x", manifest_sha256="b" * 64,
                            record={}))
        session.commit()
        found = find_dataset(session, HOSTILE)
        assert (found.name, found.title, found.identifier) == (HOSTILE, HOSTILE, "urn:x'--")
        like = session.scalars(select(Dataset).where(Dataset.title.contains("DROP"))).all()
        assert [d.name for d in like] == [HOSTILE]
        with pytest.raises(NpfmError, match="not in the catalog"):
            find_dataset(session, "' OR '1'='1")
    engine = factory.kw["bind"]
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM dataset")).scalar() == 1


def test_hostile_corpus_name_goes_through_register_locate_and_export(
        db_url: str, tmp_path: Path) -> None:
    corpus = write_toy_corpus(tmp_path / "hostile", events=6)
    manifest = json.loads((corpus / "manifest.json").read_text())  # a crafted manifest
    manifest["name"], manifest["citation"]["title"] = HOSTILE, f"{HOSTILE} corpus"
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    with open_catalog(db_url)() as session:
        assert register(corpus, session)[0].startswith(f"dataset {HOSTILE}: 2 file(s)")
        assert [r.site for r in locate(session, HOSTILE)] == ["local", "local"]
        assert exports.datacite(find_dataset(session, HOSTILE))["titles"] == [
            {"title": f"{HOSTILE} corpus"}]
        assert len(session.scalars(select(Dataset)).all()) == 1


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["shards"][0].update(path="../../etc/passwd"), "field shards.0.path: .*inside"),
    (lambda m: m["shards"][1].update(path="/etc/passwd"), "field shards.1.path: .*relative"),
    (lambda m: m["shards"][0].update(sha256="x"), "field shards.0.sha256: String should match"),
    (lambda m: m.pop("name"), "field name: Field required"),
    (lambda m: m.update(events=-1), "field events: .*greater than or equal to 0"),
])
def test_crafted_manifests_are_refused(tmp_path: Path, toy_corpus: Path, change: object,
                                       message: str) -> None:
    corpus = Path(shutil.copytree(toy_corpus, tmp_path / "crafted"))
    manifest = json.loads((corpus / "manifest.json").read_text())
    change(manifest)  # type: ignore[operator]
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        with pytest.raises(NpfmError, match=f"manifest.json: {message}"):
            register(corpus, session)
        assert session.scalars(select(Dataset)).all() == []


def test_tokens_are_stored_hashed_and_scoped(db_url: str) -> None:
    with open_catalog(db_url)() as session:
        secret = create_token(session, "curator", ["register", "replica"])
        other = create_token(session, "reader", ["verify"])
        assert secret.startswith("npfm_")
        assert len(secret) > 40
        assert secret != other
        stored = session.scalars(select(ApiToken).where(ApiToken.name == "curator")).one()
        assert stored.token_sha256 == hashlib.sha256(secret.encode()).hexdigest()
        dumped = " ".join(str(v) for t in session.scalars(select(ApiToken))
                          for v in (t.name, t.token_sha256, t.scopes))
        assert secret not in dumped
        assert other not in dumped
        assert check_token(session, secret, "register").name == "curator"
        with pytest.raises(NpfmError, match="lacks scope 'site'"):
            check_token(session, secret, "site")
        with pytest.raises(NpfmError, match="lacks scope 'register'"):
            check_token(session, other, "register")
        for wrong in (secret[:-1] + ("A" if secret[-1] != "A" else "B"), stored.token_sha256,
                      "npfm_guess"):
            with pytest.raises(NpfmError, match="unknown token"):
                check_token(session, wrong, "register")
        with pytest.raises(NpfmError, match="missing"):
            check_token(session, "", "register")
        with pytest.raises(NpfmError, match="a token of that name exists"):
            create_token(session, "curator", ["admin"])
        revoke_token(session, "curator")
        with pytest.raises(NpfmError, match="revoked"):
            check_token(session, secret, "register")
        admin = create_token(session, "root", ["admin"])
        assert check_token(session, admin, "site").name == "root"


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: create_token(s, "t", []), "field scopes: .*at least 1"),
    (lambda s: create_token(s, "t", ["sudo"]), "field scopes.0: Input should be"),
    (lambda s: create_token(s, "a b", ["register"]), "field name: String should match"),
    (lambda s: add_site(s, HOSTILE, "file:///data"), "field name: String should match"),
    (lambda s: add_site(s, "s", "javascript:alert(1)"), "field url_prefix: URL must start"),
    (lambda s: add_site(s, "s", "file:///d", kind="ftp"), "field kind: Input should be"),
    (lambda s: add_site(s, "s", "file:///d", priority=-1), "field priority: .*greater than"),
])
def test_inputs_are_validated_before_any_write(tmp_path: Path, call: object,
                                               message: str) -> None:
    with open_catalog(f"sqlite:///{tmp_path}/c.sqlite")() as session:
        with pytest.raises(NpfmError, match=message):
            call(session)  # type: ignore[operator]
        assert session.scalars(select(Site)).all() == []
        assert session.scalars(select(ApiToken)).all() == []
