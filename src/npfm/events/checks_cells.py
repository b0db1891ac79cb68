"""Value checks of the schema-2 calorimeter groups (cells, truth contributions,
waveforms, samples); each failure is a one-line NpfmError naming file, row and column.

- ``cell_truth_cell`` and ``waveform_cell`` index the event's cells, ``cell_truth_particle``
  its particles (upper bounds only where those lists were read);
- ``cell_truth_fraction`` in [0, 1], and the fractions of each cell sum to 1 (within
  ``FRACTION_TOLERANCE``);
- ``waveform_end`` is 0 or 1, ``waveform_n_samples`` positive, and an event's waveforms
  hold as many samples as its ``sample_adc`` list.

List lengths within a group and finite values are checked by ``npfm.events.checks``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from npfm.events.errors import NpfmError, locate

#: Largest allowed deviation of a cell's summed truth fractions from 1 (float32 sums).
FRACTION_TOLERANCE = 1e-3


def _values(arr: pa.Array, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Flat values (nulls filled) and the event row of each value."""
    lengths = np.asarray(pc.list_value_length(arr).fill_null(0), dtype=np.int64)
    values = pc.list_flatten(arr)
    if values.null_count:
        values = values.fill_null(fill)
    return values.to_numpy(zero_copy_only=False), np.repeat(np.arange(len(arr)), lengths)


def _fail(where: str, row: int, column: str, problem: str, fix: str) -> NpfmError:
    return NpfmError(locate(where, row, column), problem, fix)


def check_cells(arrays: dict[str, pa.Array], sizes: dict[str, np.ndarray],
                particles_read: bool, where: str, off: int) -> None:
    """All cell, truth-contribution and waveform checks the read columns allow."""
    cells_read = "cell_energy" in arrays
    for name, group, bounded in (("cell_truth_cell", "cell", cells_read),
                                 ("waveform_cell", "cell", cells_read),
                                 ("cell_truth_particle", "particle", particles_read)):
        if name not in arrays:
            continue
        idx, rows = _values(arrays[name], -1)
        upper = sizes[group][rows] if bounded else np.full(len(idx), np.iinfo(np.int64).max)
        bad = (idx < 0) | (idx >= upper)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            shown = upper[i] if bounded else "inf"
            raise _fail(where, int(rows[i]) + off, name, f"index {idx[i]} outside [0, "
                        f"{shown})", f"indices refer to the event's {group} lists")
    _check_fractions(arrays, sizes, where, off)
    _check_waveforms(arrays, where, off)


def _check_fractions(arrays: dict[str, pa.Array], sizes: dict[str, np.ndarray], where: str,
                     off: int) -> None:
    name = "cell_truth_fraction"
    if name not in arrays:
        return
    frac, rows = _values(arrays[name], np.nan)
    bad = ~((frac >= 0) & (frac <= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(where, int(rows[i]) + off, name, f"fraction {frac[i]} outside [0, 1]",
                    "give each particle's share of the cell's true deposit")
    if "cell_truth_cell" not in arrays or "cell_energy" not in arrays:
        return
    cell, _ = _values(arrays["cell_truth_cell"], 0)
    first = np.concatenate([[0], np.cumsum(sizes["cell"])])[rows]  # the event's first cell
    key = first + cell
    total = np.bincount(key, weights=frac, minlength=int(sizes["cell"].sum()))
    has = np.bincount(key, minlength=len(total)) > 0
    off_one = has & (np.abs(total - 1.0) > FRACTION_TOLERANCE)
    if off_one.any():
        k = int(np.flatnonzero(off_one)[0])
        row = int(np.searchsorted(np.cumsum(sizes["cell"]), k, side="right"))
        raise _fail(where, row + off, name, f"fractions of a cell sum to {total[k]:.4f}, "
                    "not 1", "normalise each cell's contributions to its true deposit")


def _check_waveforms(arrays: dict[str, pa.Array], where: str, off: int) -> None:
    if "waveform_end" in arrays:
        end, rows = _values(arrays["waveform_end"], 0)
        bad = (end != 0) & (end != 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(where, int(rows[i]) + off, "waveform_end", f"end {end[i]} is not 0 "
                        "or 1", "0 for single-ended readout or the first end, 1 the second")
    name = "waveform_n_samples"
    if name not in arrays:
        return
    n, rows = _values(arrays[name], 0)
    if (n <= 0).any():
        i = int(np.flatnonzero(n <= 0)[0])
        raise _fail(where, int(rows[i]) + off, name, f"{n[i]} samples",
                    "a waveform holds at least one sample")
    if "sample_adc" not in arrays:
        return
    held = np.asarray(pc.list_value_length(arrays["sample_adc"]).fill_null(0), np.int64)
    claimed = np.bincount(rows, weights=n, minlength=len(held)).astype(np.int64)
    bad = held != claimed
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _fail(where, row + off, "sample_adc", f"{held[row]} samples but the waveforms "
                    f"claim {claimed[row]}", "concatenate every waveform's samples in order")
