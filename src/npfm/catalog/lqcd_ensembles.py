"""Register a lattice QCD ensemble directory (``npfm lqcd generate``) in the catalog.

One Dataset per ensemble, identified by the sha256 of its ``ensemble.json`` (the
QCDml-inspired record, stored whole in ``Dataset.record``), and one File with a local
Replica per ILDG configuration. Registering the same ensemble again adds nothing.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.models import Dataset, File, Replica
from npfm.events.errors import NpfmError
from npfm.events.shards import sha256_file
from npfm.lqcd.actions import describe
from npfm.lqcd.metadata import ENSEMBLE_FILE, load_ensemble


def register_ensemble(path: Path, session: Session) -> list[str]:
    """Add the ensemble at ``path`` (not committed); returns one-line messages."""
    path = Path(path)
    record_path = path / ENSEMBLE_FILE
    record = load_ensemble(path)
    digest = sha256_file(record_path)
    found = session.scalar(select(Dataset).where(Dataset.manifest_sha256 == digest))
    if found is not None:
        return [f"ensemble {found.name} already registered (ensemble.json sha256 "
                f"{digest[:12]})"]
    root = path.resolve()
    summary = describe(record)  # action-aware: quenched Wilson, clover, HISQ, domain wall
    beta, dims = summary["beta"], summary["lattice"]
    dataset = Dataset(
        name=record["name"], title=summary["title"],
        identifier=record["markovChainURI"], schema_version=1,
        events=len(record["configurations"]), hits=0, license=record["license"],
        creators=list(record["creators"]), created=record["created"], path=str(root),
        manifest_sha256=digest, source="ildg", data_level="gauge-configurations",
        facility="lattice", description=f"{record['algorithm']['name']}; ILDG files with "
        "SciDAC checksums", keywords=summary["keywords"], record=record)
    for entry in record["configurations"]:
        file_path = root / entry["file"]
        if not file_path.is_file():
            raise NpfmError(str(file_path), "configuration listed in ensemble.json is missing",
                            "restore the file or regenerate the ensemble")
        sha = sha256_file(file_path)
        if sha != entry["sha256"]:
            raise NpfmError(str(file_path), f"sha256 {sha[:12]} differs from ensemble.json "
                            f"({entry['sha256'][:12]})", "restore the file from its source")
        file = File(path=entry["file"], sha256=sha, bytes=file_path.stat().st_size, events=1)
        file.replicas.append(Replica(site="local", url=file_path.as_uri(), sha256=sha,
                                     status="available"))
        dataset.files.append(file)
    session.add(dataset)
    return [f"ensemble {dataset.name}: {len(dataset.files)} configuration(s), {dims}, "
            f"beta {beta} (ensemble.json sha256 {digest[:12]})"]
