"""ROOT input through uproot: opening, trees, branches and chunked iteration, with every
failure (missing, non-ROOT, truncated or damaged file, missing tree or branch) turned
into an NpfmError naming the file and the tree, branch or entry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt
import uproot

from npfm.events.errors import NpfmError

_DAMAGED = "copy the file again from its source; it is damaged or incomplete"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def open_root(path: Path | str) -> Any:
    """Open a ROOT file with uproot; missing, non-ROOT and truncated files are NpfmErrors.

    The TFile header (``root`` magic, version, fBEGIN, fEND) gives the file's full length,
    so a truncated copy is recognised before any basket is read.
    """
    path = Path(path)
    if not path.is_file():
        raise NpfmError(str(path), "file not found", "check the path")
    with open(path, "rb") as fh:
        head = fh.read(20)
    if head[:4] != b"root":
        raise NpfmError(str(path), "not a ROOT file (no 'root' magic bytes)",
                        "give a ROOT file (.root)")
    version = int.from_bytes(head[4:8], "big")
    end = int.from_bytes(head[12:20] if version >= 1_000_000 else head[12:16], "big")
    size = path.stat().st_size
    if size < end:
        raise NpfmError(str(path), f"truncated: {size} bytes, the ROOT header says {end}",
                        _DAMAGED)
    try:
        return uproot.open(path)
    except Exception as exc:  # uproot raises OSError, ValueError, ... for damaged files
        raise NpfmError(str(path), f"cannot read ({_one_line(exc)})", _DAMAGED) from exc


def get_tree(file: Any, name: str, path: Path | str) -> Any:
    """The TTree ``name`` of an open file; a missing tree or an RNTuple is an NpfmError."""
    try:
        obj = file[name]
    except uproot.KeyInFileError:
        found = sorted(file.keys(cycle=False))
        raise NpfmError(str(path), f"no tree {name!r} (the file holds {found})",
                        "give the right tree name or file") from None
    except Exception as exc:  # damaged directory or streamer records
        raise NpfmError(f"{path} tree {name}", f"cannot read ({_one_line(exc)})",
                        _DAMAGED) from exc
    if not isinstance(obj, uproot.behaviors.TTree.TTree):
        raise NpfmError(f"{path} {name}", f"is a {type(obj).__name__}, not a TTree",
                        "write the data as a TTree (uproot: file.mktree, then extend)")
    return obj


def branch_names(tree: Any) -> set[str]:
    """Names of all branches, nested ones (podio's ``MCParticles.PDG``) included."""
    return set(tree.keys(recursive=True, full_paths=False))


def flat_offsets(array: ak.Array) -> tuple[np.ndarray, npt.NDArray[np.int64]]:
    """Values of a scalar or jagged branch, and offsets (entry i: values[o[i]:o[i+1]])."""
    if array.ndim == 1:
        values = ak.to_numpy(array)
        return values, np.arange(len(values) + 1, dtype=np.int64)
    counts = ak.to_numpy(ak.num(array, axis=1)).astype(np.int64)
    return ak.to_numpy(ak.flatten(array)), np.concatenate([[0], np.cumsum(counts)])


def iter_chunks(tree: Any, branches: list[str], where: str, step_size: int | str
                ) -> Iterator[tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """(first entry, {branch: flat_offsets}) per chunk of ``step_size`` (entries or
    "50 MB"); read errors and non-finite values are NpfmErrors naming branch and entry."""
    chunks = tree.iterate(branches, step_size=step_size, library="ak", how=dict, report=True)
    while True:
        try:
            arrays, report = next(chunks)
        except StopIteration:
            return
        except Exception as exc:  # uproot raises many types for damaged baskets
            raise NpfmError(where, f"cannot read branches ({_one_line(exc)})", _DAMAGED
                            ) from exc
        start = int(report.tree_entry_start)
        out = {}
        for name in branches:
            values, offsets = out[name] = flat_offsets(arrays[name])
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                i = int(np.flatnonzero(~np.isfinite(values))[0])
                entry = start + int(np.searchsorted(offsets, i, side="right")) - 1
                raise NpfmError(f"{where} branch {name} entry {entry}",
                                f"non-finite value {values[i]}",
                                "fix the source; unmeasured values must use the format's "
                                "sentinel, not NaN or inf")
        yield start, out


def resolve(names: set[str], aliases: Mapping[str, tuple[str, ...]],
            required: tuple[str, ...], where: str) -> dict[str, str]:
    """Quantity -> branch name (first alias present); a missing required one is an error."""
    found = {key: next(a for a in alias if a in names)
             for key, alias in aliases.items() if any(a in names for a in alias)}
    for key in required:
        if key not in found:
            raise NpfmError(where, f"no branch {aliases[key][0]!r}"
                            + (f" (nor {list(aliases[key][1:])})" if aliases[key][1:] else ""),
                            "give a file with the documented branches")
    return found


# --- ALEPH ------------------------------------------------------------------------------
