"""The federation interface backed by a Rucio server (optional extra ``npfm[rucio]``).

Mapping (docs/catalog.md): a catalog Dataset is a Rucio DATASET DID ``scope:name``; each
of its Files is a FILE DID ``scope:<dataset name>.<path with / as .>`` attached to it,
with ``bytes`` and ``adler32`` (Rucio's native checksum) and the sha256 as DID metadata;
a Site is an RSE (same name); a Replica is a file replica at an RSE, its PFN the URL;
copies at other sites are requested with a replication rule (``rule``); a replica that
fails verification is declared bad (``declare_bad_file_replicas``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from npfm.catalog.federation import DEFAULT_PRIORITY, Probe, checksums, find_dataset, reachable
from npfm.catalog.models import Dataset, File, Site
from npfm.events.errors import NpfmError

#: Rucio's default DID name pattern (rucio.common.schema.generic NAME: letters, digits,
#: . - _ ; at most 250 characters after the first).
DID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,249}$")


def did_name(text: str) -> str:
    """``text`` made a valid Rucio DID name (other characters become ``_``)."""
    name = re.sub(r"[^A-Za-z0-9.\-_]", "_", text.replace("/", "."))
    name = re.sub(r"^[^A-Za-z0-9]+", "", name)[:250]
    if not DID_NAME.match(name):
        raise NpfmError(f"Rucio name for {text!r}", "nothing usable left", "rename it")
    return name


def dataset_did(scope: str, dataset: Dataset) -> dict[str, str]:
    """The DATASET DID of a catalog dataset."""
    return {"scope": scope, "name": did_name(dataset.name)}


def file_did(scope: str, dataset: Dataset, file: File) -> dict[str, Any]:
    """The FILE DID of a catalog file, with the size and checksum Rucio stores."""
    did: dict[str, Any] = {"scope": scope, "name": did_name(f"{dataset.name}.{file.path}"),
                           "bytes": file.bytes}
    if file.adler32:
        did["adler32"] = file.adler32
    if file.sha256:
        did["meta"] = {"sha256": file.sha256}
    return did


@dataclass(frozen=True)
class RucioReplica:
    """One PFN of a file DID at an RSE, as ``list_replicas`` reports it."""

    did: str  # scope:name
    rse: str
    pfn: str
    adler32: str | None
    state: str


def replicas_from_listing(listing: Iterable[dict[str, Any]]) -> list[RucioReplica]:
    """Flatten ``Client.list_replicas`` output (``rses``: RSE -> PFNs, ``states``)."""
    out: list[RucioReplica] = []
    for item in listing:
        did = f"{item['scope']}:{item['name']}"
        states = item.get("states", {})
        for rse, pfns in item.get("rses", {}).items():
            out.extend(RucioReplica(did, rse, pfn, item.get("adler32"),
                                    str(states.get(rse, "AVAILABLE"))) for pfn in pfns)
    return out


def choose(replicas: list[RucioReplica], priority: dict[str, int],
           probe: Probe = reachable) -> dict[str, RucioReplica]:
    """Per DID, the reachable AVAILABLE replica at the RSE of lowest catalog priority."""
    chosen: dict[str, RucioReplica] = {}
    ranked = sorted(replicas, key=lambda r: (priority.get(r.rse, DEFAULT_PRIORITY), r.rse))
    for replica in ranked:
        if replica.did not in chosen and replica.state == "AVAILABLE" and probe(replica.pfn):
            chosen[replica.did] = replica
    return chosen


class RucioFederation:
    """``add_site``/``add_replica``/``locate``/``verify`` against a Rucio server."""

    def __init__(self, scope: str, client: Any = None, **client_args: Any) -> None:
        if client is None:
            try:
                from rucio.client import Client
            except ImportError as err:
                raise NpfmError("Rucio backend", "rucio-clients is not installed",
                                "pip install 'npfm[rucio]'") from err
            try:
                client = Client(**client_args)
            except Exception as err:  # rucio raises many types (config, auth, connection)
                raise NpfmError("Rucio backend", f"cannot connect: {err}".splitlines()[0],
                                "check rucio_host, auth_host, account and credentials"
                                ) from err
        self.scope, self.client = scope, client

    def add_site(self, site: Site) -> None:
        """Check that the site exists as an RSE (RSEs are created by Rucio admins)."""
        self.client.get_rse(site.name)

    def add_dataset(self, dataset: Dataset, rse: str) -> list[str]:
        """Register the dataset DID and its files' replicas at ``rse`` (PFNs: the URLs),
        attach the files, and set their sha256 as DID metadata; returns messages.

        Free metadata keys need a server metadata plugin that supports them (Rucio's
        JSON plugin, not available on a SQLite-backed server); without one the sha256
        stays in the npfm catalog only, and a message says so.
        """
        from rucio.common.exception import DataIdentifierAlreadyExists, RucioException

        did = dataset_did(self.scope, dataset)
        with contextlib.suppress(DataIdentifierAlreadyExists):  # again: add what is missing
            self.client.add_dataset(did["scope"], did["name"])
        files, metas = [], []
        for file in dataset.files:
            spec = file_did(self.scope, dataset, file)
            metas.append((spec["name"], spec.pop("meta", {})))
            spec["pfn"] = file.replicas[0].url if file.replicas else None
            files.append({k: v for k, v in spec.items() if v is not None})
        self.client.add_replicas(rse, files)
        attached = {f["name"] for f in self.client.list_files(did["scope"], did["name"])}
        new = [{"scope": f["scope"], "name": f["name"]} for f in files
               if f["name"] not in attached]
        if new:
            self.client.attach_dids(did["scope"], did["name"], new)
        messages = [f"{did['scope']}:{did['name']}: {len(files)} file replica(s) at {rse}"]
        try:
            for name, meta in metas:
                for key, value in meta.items():
                    self.client.set_metadata(self.scope, name, key, value)
        except RucioException as err:
            messages.append("sha256 not stored as DID metadata (server: "
                            f"{str(err).splitlines()[0]})")
        return messages

    def rule(self, dataset: Dataset, rse_expression: str, copies: int = 1,
             lifetime_s: int | None = None) -> Any:
        """A replication rule asking Rucio to keep ``copies`` of the dataset there."""
        return self.client.add_replication_rule([dataset_did(self.scope, dataset)], copies,
                                                rse_expression, lifetime=lifetime_s)

    def locate(self, session: Session, dataset_name_or_id: str | int,
               probe: Probe = reachable) -> dict[str, RucioReplica]:
        """One reachable replica per file DID, preferring low catalog site priority."""
        dataset = find_dataset(session, dataset_name_or_id)
        dids = [{"scope": self.scope, "name": file_did(self.scope, dataset, f)["name"]}
                for f in dataset.files]
        listing = replicas_from_listing(self.client.list_replicas(dids))
        priority = {s.name: s.priority for s in session.query(Site)}
        chosen = choose(listing, priority, probe)
        missing = [d["name"] for d in dids if f"{self.scope}:{d['name']}" not in chosen]
        if missing:
            raise NpfmError(f"Rucio dataset {dataset.name}", f"no reachable replica of "
                            f"{missing[0]}", "add a rule for another RSE")
        return chosen

    def verify(self, replicas: Iterable[RucioReplica]) -> list[RucioReplica]:
        """Recompute adler32 of readable PFNs; declare mismatches bad (by DID and RSE, as
        one PFN may match several RSEs); returns the bad replicas."""
        bad = [r for r in replicas if r.adler32 and checksums(r.pfn)[0] != r.adler32]
        if bad:
            self.client.declare_bad_file_replicas(
                [{"scope": r.did.split(":", 1)[0], "name": r.did.split(":", 1)[1],
                  "rse": r.rse} for r in bad], "npfm verify: adler32 mismatch")
        return bad
