"""Importers by format name, for recipes: ``IMPORTERS[name](paths, **options)`` yields
event mappings (``npfm.events.build.events_to_table`` input)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from npfm.formats import aleph_text

Importer = Callable[..., Iterator[dict[str, Any]]]


def _aleph_text(paths: Sequence[Path], **options: Any) -> Iterator[dict[str, Any]]:
    return aleph_text.read_archive(paths, **options)


IMPORTERS: dict[str, Importer] = {
    "aleph_text": _aleph_text,
}
