"""Importers by format name, for recipes: ``IMPORTERS[name](paths, **options)`` yields
event mappings (``npfm.events.build.events_to_table`` input) from all the files."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from npfm.formats import (
    aleph_root,
    aleph_text,
    clas12_hipo,
    edm4hep,
    fm4npp,
    hepmc3,
    hit_table,
    trackml,
)

Importer = Callable[..., Iterator[dict[str, Any]]]


def _each(read: Callable[..., Iterator[dict[str, Any]]]) -> Importer:
    """An importer reading the files one after the other."""
    def importer(paths: Sequence[Path], **options: Any) -> Iterator[dict[str, Any]]:
        for path in paths:
            yield from read(path, **options)
    importer.__doc__ = read.__doc__
    return importer


def _hit_tables(paths: Sequence[Path], **options: Any) -> Iterator[dict[str, Any]]:
    """Paths are YAML column mappings, each naming its hit (and particle) files."""
    for path in paths:
        yield from hit_table.read_hit_table(path, **options)


IMPORTERS: dict[str, Importer] = {
    "aleph_text": aleph_text.read_archive,  # pairs reconstructed and truth files itself
    "aleph_root": _each(aleph_root.read_aleph_root),
    "clas12_hipo": _each(clas12_hipo.read_clas12_hipo),
    "edm4hep": _each(edm4hep.read_edm4hep),
    "fm4npp": _each(fm4npp.read_fm4npp),
    "hit_table": _hit_tables,
    # generator events pushed through the fast simulation: options detector, seed, ...
    "hepmc3": _each(hepmc3.simulate_hepmc3),
    # paths: TrackML hits files (event*-hits.csv[.gz]); their sibling files are read too
    "trackml": _each(trackml.read_trackml),
}

#: The reader whose keyword parameters are each format's recipe ``options``.
_READERS: dict[str, Callable[..., Any]] = {
    "aleph_text": aleph_text.read_archive, "aleph_root": aleph_root.read_aleph_root,
    "clas12_hipo": clas12_hipo.read_clas12_hipo,
    "edm4hep": edm4hep.read_edm4hep, "fm4npp": fm4npp.read_fm4npp,
    "hit_table": hit_table.read_hit_table, "hepmc3": hepmc3.simulate_hepmc3,
    "trackml": trackml.read_trackml,
}
#: Parameters the pipeline passes itself (never a recipe option).
_INTERNAL = {"progress", "stats"}


def importer_options(name: str) -> set[str]:
    """Names a recipe may give in ``import.options`` for format ``name``."""
    params = list(inspect.signature(_READERS[name]).parameters.values())[1:]
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.name not in _INTERNAL}
