"""One-line, actionable errors for bad input."""

from __future__ import annotations


class NpfmError(Exception):
    """Bad input or a corpus that fails its checks.

    ``str(err)`` is one line: where (file, row, column), what is wrong, how to fix it.
    """

    def __init__(self, where: str, problem: str, fix: str) -> None:
        self.where, self.problem, self.fix = where, problem, fix
        super().__init__(f"{where}: {problem}; fix: {fix}")


def locate(path: object, row: int | None = None, column: str | None = None) -> str:
    """Format a location such as ``shards/part-00000.parquet row 17 column hit_x``."""
    parts = [str(path)]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column}")
    return " ".join(parts)
