"""Controlled vocabularies (subsystems, data levels, splits, object and PID classes).

The lists live in ``vocabulary.yaml`` beside this file; a name's integer code is its
position in its list.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import yaml

VOCABULARY_NAMES = ("subsystems", "data_levels", "splits", "object_types", "pid_classes")


@cache
def _load() -> dict[str, tuple[str, ...]]:
    text = files("npfm.events").joinpath("vocabulary.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    return {key: tuple(entry["name"] for entry in raw[key]) for key in VOCABULARY_NAMES}


def names(vocabulary: str) -> tuple[str, ...]:
    """Names of one vocabulary in code order, e.g. ``names("subsystems")``."""
    return _load()[vocabulary]


def code(vocabulary: str, name: str) -> int:
    """Integer code of ``name`` in ``vocabulary``; raises KeyError if unknown."""
    try:
        return names(vocabulary).index(name)
    except ValueError:
        raise KeyError(f"{name!r} is not in the {vocabulary} vocabulary") from None
