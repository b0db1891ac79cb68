"""Federated data location: sites, replicas, ``locate`` and checksum verification.

A file may have replicas at several sites (storage endpoints). ``locate`` picks, per file,
a reachable replica at the most preferred site (lowest ``Site.priority``); ``verify``
re-reads replicas, recomputes adler32 (zlib) and sha256, and marks mismatches ``bad``.
A replica at a site not in the ``site`` table (e.g. ``local``, made by ``register``)
has priority ``DEFAULT_PRIORITY``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from npfm.catalog.inputs import ReplicaInput, SiteInput, parse
from npfm.catalog.models import Dataset, File, Replica, Site
from npfm.events.errors import NpfmError

DEFAULT_PRIORITY = 1000
HTTP_TIMEOUT_S = 5.0
CHUNK = 1 << 20  # bytes read at a time while checksumming
Probe = Callable[[str], bool]
READABLE = ("file", "http", "https")  # URL schemes verify can read


def add_site(session: Session, name: str, url_prefix: str, kind: str = "posix",
             priority: int = 100, enabled: bool = True) -> Site:
    """Add (or update) a storage site; commits."""
    spec = parse(SiteInput, "site", name=name, url_prefix=url_prefix, kind=kind,
                 priority=priority, enabled=enabled)
    site = session.scalar(select(Site).where(Site.name == spec.name))
    if site is None:
        site = Site(name=spec.name)
        session.add(site)
    site.url_prefix, site.kind = spec.url_prefix, spec.kind
    site.priority, site.enabled = spec.priority, spec.enabled
    session.commit()
    return site


def find_dataset(session: Session, name_or_id: str | int) -> Dataset:
    """A dataset by id, manifest sha256, identifier (DOI/URN) or name (newest first)."""
    key = str(name_or_id)
    conditions = [Dataset.name == key, Dataset.manifest_sha256 == key,
                  Dataset.identifier == key]
    if key.isdigit():
        conditions.append(Dataset.id == int(key))
    dataset = session.scalar(select(Dataset).where(or_(*conditions))
                             .order_by(Dataset.id.desc()).limit(1))
    if dataset is None:
        raise NpfmError(f"dataset {key}", "not in the catalog",
                        "register it first (npfm catalog register) or check the name")
    return dataset


def add_replica(session: Session, dataset: str | int, path: str, site: str, url: str,
                adler32: str | None = None, sha256: str | None = None) -> Replica:
    """Record a copy of the dataset's file ``path`` at ``site`` (which must exist); commits."""
    spec = parse(ReplicaInput, "replica", dataset=str(dataset), path=path, site=site,
                 url=url, adler32=adler32, sha256=sha256)
    if session.scalar(select(Site).where(Site.name == spec.site)) is None:
        raise NpfmError(f"site {spec.site}", "not in the catalog",
                        "add it first with npfm catalog site add")
    found = find_dataset(session, spec.dataset)
    file = session.scalar(select(File).where(File.dataset_id == found.id,
                                             File.path == spec.path))
    if file is None:
        raise NpfmError(f"dataset {found.name}: file {spec.path}", "not in the dataset",
                        "give the file's path relative to the dataset, as listed")
    replica = session.scalar(select(Replica).where(Replica.file_id == file.id,
                                                   Replica.site == spec.site))
    if replica is None:
        replica = Replica(file_id=file.id, site=spec.site, status="available")
        session.add(replica)
    replica.url = spec.url
    replica.adler32 = spec.adler32 or file.adler32
    replica.sha256 = spec.sha256 or file.sha256 or None
    session.commit()
    return replica


def reachable(url: str) -> bool:
    """file:// exists and is readable; http(s):// answers a HEAD request with 2xx/3xx."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = Path(urllib.request.url2pathname(parts.path))
        return path.is_file()
    if parts.scheme in ("http", "https"):
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                return bool(200 <= response.status < 400)
        except (urllib.error.URLError, OSError, ValueError):
            return False
    return False


def _priorities(session: Session) -> dict[str, tuple[int, bool]]:
    return {s.name: (s.priority, s.enabled) for s in session.scalars(select(Site))}


def ranked_replicas(session: Session, file: File,
                    sites: dict[str, tuple[int, bool]] | None = None) -> list[Replica]:
    """The file's usable replicas (not bad, at an enabled site), most preferred first;
    ``sites``: name -> (priority, enabled), read from the catalog when not given."""
    sites = _priorities(session) if sites is None else sites
    usable = [r for r in file.replicas if r.status != "bad"
              and sites.get(r.site, (DEFAULT_PRIORITY, True))[1]]
    return sorted(usable, key=lambda r: (sites.get(r.site, (DEFAULT_PRIORITY, True))[0],
                                         r.status != "available", r.id))


def locate(session: Session, dataset_name_or_id: str | int,
           probe: Probe = reachable) -> list[Replica]:
    """One reachable replica per file of the dataset, at the most preferred site.

    Raises NpfmError naming the first file with no reachable replica.
    """
    dataset = find_dataset(session, dataset_name_or_id)
    sites = _priorities(session)
    files = session.scalars(select(File).where(File.dataset_id == dataset.id)
                            .options(selectinload(File.replicas)).order_by(File.id))
    chosen = []
    for file in files:
        tried = []
        for replica in ranked_replicas(session, file, sites):
            if probe(replica.url):
                chosen.append(replica)
                break
            tried.append(replica.site)
        else:
            raise NpfmError(f"dataset {dataset.name}: file {file.path}",
                            "no reachable replica (tried: " + (", ".join(tried) or "none")
                            + ")", "add a replica (npfm catalog replica add) or bring a "
                            "site back")
    return chosen


def _chunks(url: str) -> Iterator[bytes]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        with open(urllib.request.url2pathname(parts.path), "rb") as handle:
            while block := handle.read(CHUNK):
                yield block
    elif parts.scheme in ("http", "https"):
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            while block := response.read(CHUNK):
                yield block
    else:
        raise OSError(f"cannot read {parts.scheme}:// URLs directly")


def checksums(url: str, progress: Callable[[int], None] | None = None) -> tuple[str, str]:
    """(adler32 as 8 hex digits, sha256 hex) of the bytes at ``url``, read once."""
    adler, sha = 1, hashlib.sha256()
    for block in _chunks(url):
        adler = zlib.adler32(block, adler)
        sha.update(block)
        if progress:
            progress(len(block))
    return f"{adler & 0xFFFFFFFF:08x}", sha.hexdigest()


@dataclass
class VerifyReport:
    """Counts of a verification pass and the URLs of the bad, missing and skipped
    replicas (skipped: a scheme this process cannot read, e.g. root://; left unchanged)."""

    checked: int = 0
    ok: int = 0
    bad: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def verify(session: Session, dataset: str | int | None = None, site: str | None = None,
           progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Re-read replicas (of one dataset and/or site, default all), recompute adler32 and
    sha256, and set each replica's status (available, bad, missing) and check time.

    Expected checksums are the replica's own, else its file's; a good replica's
    computed checksums are recorded, and fill in its file's when those were unknown.
    ``progress(n_bytes)`` is called as bytes are read. Commits.
    """
    query = select(Replica).join(File).options(selectinload(Replica.file))
    if dataset is not None:
        query = query.where(File.dataset_id == find_dataset(session, dataset).id)
    if site is not None:
        query = query.where(Replica.site == site)
    report = VerifyReport()
    for replica in session.scalars(query.order_by(Replica.id)):
        if urllib.parse.urlsplit(replica.url).scheme not in READABLE:
            report.skipped.append(replica.url)
            continue
        report.checked += 1
        try:
            adler, sha = checksums(replica.url, progress)
        except (OSError, urllib.error.URLError, ValueError):
            replica.status = "missing"
            report.missing.append(replica.url)
        else:
            want_adler = replica.adler32 or replica.file.adler32
            want_sha = replica.sha256 or replica.file.sha256 or None
            good = (want_adler in (None, adler)) and (want_sha in (None, sha))
            replica.status = "available" if good else "bad"
            if good:
                report.ok += 1
                replica.adler32, replica.sha256 = adler, sha
                file = replica.file  # learn checksums the catalog did not have
                file.sha256, file.adler32 = file.sha256 or sha, file.adler32 or adler
            else:
                report.bad.append(replica.url)
        replica.checked = dt.datetime.now(dt.UTC)
    session.commit()
    return report
