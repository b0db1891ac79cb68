"""Reader of the MIT ALEPH archive in its ROOT form.

Layout (MITOpenData/e-e-_Analysis, ``DataProcessing/include/particleData.h`` and
``DataProcessing/src/scan.cc``): trees ``t`` (reconstructed), ``tgen`` (generator level
after cuts) and ``tgenBefore`` (before cuts), one entry per event. Event scalars
``RunNo``, ``EventNo``, ``Energy`` (sqrt(s), GeV), ``isMC``, and the primary-vertex line
``bFlag``, ``bx``, ``by``, ``ebx``, ``eby`` (cm; -999 when absent). Per-particle arrays
(counter ``nParticle``) ``px``, ``py``, ``pz``, ``mass`` (GeV), ``charge``, ``pwflag``,
``pid`` (ALEPH/GEANT3 code, -999 when absent), ``d0``, ``z0`` (cm, -999 without a
track), ``ntpc``, ``nitc``, ``nvdet`` (negative when not recorded). Other branches
(pt, eta, thrust axes, ...) are derived and ignored. Aliases such as ``run``/``event``/
``ecm`` and ``m`` are accepted (``ALIASES``).

Entries become ``aleph_text.AlephEvent`` blocks and go through the text importer's
``to_event`` and ``link``, so both forms of the archive give identical events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from npfm.events.errors import NpfmError
from npfm.formats.aleph_text import NOT_MEASURED, AlephEvent, link, to_event
from npfm.formats.rootio import branch_names, get_tree, iter_chunks, open_root, resolve

#: Accepted branch names of each quantity, the MIT name first.
ALIASES: dict[str, tuple[str, ...]] = {
    "run": ("RunNo", "run", "RunNumber"), "event": ("EventNo", "event", "EventNumber"),
    "ecm": ("Energy", "ecm", "ECM"), "isMC": ("isMC",), "bFlag": ("bFlag",), "bx": ("bx",),
    "by": ("by",), "ebx": ("ebx",), "eby": ("eby",), "px": ("px",), "py": ("py",),
    "pz": ("pz",), "m": ("mass", "m"), "charge": ("charge",), "pwflag": ("pwflag",),
    "pid": ("pid",), "d0": ("d0",), "z0": ("z0",), "ntpc": ("ntpc",), "nitc": ("nitc",),
    "nvdet": ("nvdet",),
}
_REQUIRED = ("run", "event", "ecm", "px", "py", "pz", "m", "charge", "pwflag")
_PER_OBJECT = ("px", "py", "pz", "m", "charge", "pwflag", "pid", "d0", "z0", "ntpc", "nitc",
               "nvdet")
#: Integer columns where a negative value means "not recorded" (scan.cc fills -999/-127).
_NEGATIVE_IS_MISSING = ("pid", "ntpc", "nitc", "nvdet")


def _rows(columns: dict[str, list[Any]], where: str) -> list[dict[str, Any]]:
    try:
        rows = [dict(zip(columns, values, strict=True))
                for values in zip(*columns.values(), strict=True)]
    except ValueError:
        lengths = {k: len(v) for k, v in columns.items()}
        raise NpfmError(where, f"per-particle branches differ in length {lengths}",
                        "every per-particle array needs nParticle entries") from None
    for key in _NEGATIVE_IS_MISSING:
        if key in columns:
            for row in rows:
                if row[key] < 0:
                    del row[key]
    return rows


def _blocks(file: Any, path: Path, name: str, kind: str, step_size: int | str
            ) -> Iterator[AlephEvent]:
    """The entries of tree ``name`` as text-importer blocks; ``kind`` unless isMC says."""
    tree = get_tree(file, name, path)
    where = f"{path} tree {name}"
    branch = resolve(branch_names(tree), ALIASES, _REQUIRED, where)
    per_object = [k for k in _PER_OBJECT if k in branch]
    for start, data in iter_chunks(tree, list(branch.values()), where, step_size):
        col = {key: data[b] for key, b in branch.items()}
        for i in range(len(col["run"][0])):
            entry = f"{where} entry {start + i}"
            value = {k: v[0][i] for k, v in col.items() if k not in per_object}
            rows = _rows({k: col[k][0][col[k][1][i]:col[k][1][i + 1]].tolist()
                          for k in per_object}, entry)
            vertex = None
            if all(k in value for k in ("bFlag", "bx", "by", "ebx", "eby")) \
                    and value["bFlag"] > NOT_MEASURED:
                vertex = tuple(float(value[k]) for k in ("bFlag", "bx", "by", "ebx", "eby"))
            this_kind = kind
            if "isMC" in value and kind in ("MC_RECO", "ALEPH_DATA"):
                this_kind = "MC_RECO" if value["isMC"] else "ALEPH_DATA"
            yield AlephEvent(this_kind, int(value["run"]), int(value["event"]),
                             float(value["ecm"]), vertex, rows)


def read_aleph_root(path: Path | str, *, reco_tree: str | None = "t",
                    truth_tree: str | None = "tgen", process: str | None = None,
                    step_size: int | str = "50 MB",
                    progress: Callable[[int], None] | None = None,
                    stats: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """Stream events (``events_to_table`` mappings) of an MIT ALEPH ROOT file.

    ``reco_tree`` entries give objects, ``truth_tree`` entries truth particles; events
    with the same (run, event) in both are joined as ``aleph_text.link`` does (both trees
    list events in the same order in the archive, so memory stays bounded; with
    ``truth_tree="tgenBefore"`` the events rejected by the cuts wait in memory until the
    end). Set either to None to read one tree; real data files have only ``t`` (pass
    ``truth_tree=None``). Without an ``isMC`` branch, reconstructed events count as
    simulated when a truth tree is read. ``step_size`` bounds what is read at once
    (entries, or bytes such as "50 MB"); ``progress(1)`` is called per event; ``stats``
    counts linked, reco_only and truth_only events.
    """
    path = Path(path)
    if reco_tree is None and truth_tree is None:
        raise NpfmError(str(path), "no tree selected", "give reco_tree and/or truth_tree")
    stats = stats if stats is not None else {}
    for key in ("linked", "reco_only", "truth_only"):
        stats.setdefault(key, 0)
    with open_root(path) as file:
        reco = truth = None
        if reco_tree is not None:
            reco = _blocks(file, path, reco_tree, "MC_RECO" if truth_tree else "ALEPH_DATA",
                           step_size)
        if truth_tree is not None:
            truth_kind = "MC_TRUE_BEFORE_CUT" if truth_tree == "tgenBefore" \
                else "MC_TRUE_AFTER_CUT"
            truth = _blocks(file, path, truth_tree, truth_kind, step_size)
        if reco is not None and truth is not None:
            pairs: Iterator[tuple[AlephEvent | None, AlephEvent | None]] = \
                link(reco, truth, stats)
        elif reco is not None:
            pairs = ((block, None) for block in reco)
        else:
            assert truth is not None
            pairs = ((None, block) for block in truth)
        for reco_block, truth_block in pairs:
            if reco is None or truth is None:
                stats["reco_only" if truth is None else "truth_only"] += 1
            try:
                event = to_event(reco_block, truth_block, process)
            except NpfmError as err:
                raise NpfmError(f"{path} tree {reco_tree} {err.where}", err.problem, err.fix
                                ) from None
            yield event
            if progress:
                progress(1)
