"""`npfm validate` passes on a written corpus and fails cleanly on each corruption."""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from npfm.events.shards import sha256_file

SHARD = "shards/part-00001.parquet"


def npfm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "npfm", *args], capture_output=True,
                          text=True, timeout=120)


def _rewrite(corpus: Path, edit: Callable[[pa.Table], pa.Table], fix_checksum: bool = True,
             metadata: dict | None = None) -> None:
    """Replace shard 1 by an edited copy; update the manifest so the checksum matches."""
    path = corpus / SHARD
    table = edit(pq.read_table(path))
    if metadata is not None:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path)
    if fix_checksum:
        manifest = json.loads((corpus / "manifest.json").read_text())
        manifest["shards"][1]["sha256"] = sha256_file(path)
        (corpus / "manifest.json").write_text(json.dumps(manifest))


def _set_list_value(table: pa.Table, column: str, row: int, index: int, value: object
                    ) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row][index] = value
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, pa.array(values, table.schema.field(i).type))


def _nan(t: pa.Table) -> pa.Table:
    return _set_list_value(t, "hit_y", 7, 3, float("nan"))


def _unknown_subsystem(t: pa.Table) -> pa.Table:
    return _set_list_value(t, "hit_subsystem", 5, 0, "HCAL")


def _truncate(corpus: Path) -> None:
    path = corpus / SHARD
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    manifest = json.loads((corpus / "manifest.json").read_text())
    manifest["shards"][1]["sha256"] = sha256_file(path)
    (corpus / "manifest.json").write_text(json.dumps(manifest))


def _flip_byte(corpus: Path) -> None:
    path = corpus / SHARD
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _manifest_version(corpus: Path) -> None:
    manifest = json.loads((corpus / "manifest.json").read_text())
    manifest["schema_version"] = 4
    (corpus / "manifest.json").write_text(json.dumps(manifest))


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "wrong schema version in shard": (
        lambda c: _rewrite(c, lambda t: t, metadata={b"npfm.schema_version": b"4"}),
        rf"{SHARD}: schema version 4 but this npfm reads version 1 or 2 or 3; fix: "),
    "wrong schema version in manifest": (
        _manifest_version,
        r"manifest.json: schema version 4 but this npfm reads version 1 or 2 or 3"),
    "missing column": (
        lambda c: _rewrite(c, lambda t: t.drop_columns(["hit_edep"])),
        rf"{SHARD} column hit_edep: column missing; fix: "),
    "NaN": (lambda c: _rewrite(c, _nan), rf"{SHARD} row 7 column hit_y: non-finite value nan"),
    "truncated parquet": (_truncate, rf"{SHARD}: not a readable Parquet file, truncated or "
                                     r"corrupt"),
    "checksum mismatch": (_flip_byte, rf"{SHARD}: sha256 \w+… does not match the manifest"),
    "unknown subsystem": (lambda c: _rewrite(c, _unknown_subsystem),
                          rf"{SHARD} row 5 column hit_subsystem: unknown subsystem 'HCAL'"),
    "row count differs from manifest": (
        lambda c: _rewrite(c, lambda t: t.slice(0, 30)),
        rf"{SHARD}: 30 events but the manifest says 40"),
    "shard not in manifest": (
        lambda c: shutil.copy(c / SHARD, c / "shards/part-00099.parquet"),
        r"part-00099.parquet: shard not listed in the manifest"),
}


def test_validate_passes_on_written_corpus(corpus_dir: Path) -> None:
    result = npfm("validate", str(corpus_dir))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "100 events" in result.stdout


@pytest.mark.parametrize("case", CASES)
def test_validate_fails_cleanly(corpus_dir: Path, case: str) -> None:
    corrupt, expected = CASES[case]
    corrupt(corpus_dir)
    result = npfm("validate", str(corpus_dir))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("npfm: error: ")
    assert "fix: " in lines[0]
    import re

    assert re.search(expected, lines[0]), lines[0]


def test_inspect_and_validate_refuse_non_corpus(tmp_path: Path) -> None:
    for command in ("validate", "inspect"):
        result = npfm(command, str(tmp_path))
        assert result.returncode == 2
        assert "manifest.json not found" in result.stderr


def test_nan_check_sees_every_row_group(corpus_dir: Path) -> None:
    # Corruption in a late row group of a shard is found too (rows counted per shard).
    def edit(t: pa.Table) -> pa.Table:
        return _set_list_value(t, "hit_x", t.num_rows - 1, 0, float("inf"))
    _rewrite(corpus_dir, edit)
    result = npfm("validate", str(corpus_dir))
    assert re_search(rf"{SHARD} row 39 column hit_x: non-finite value inf", result.stderr)


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


def test_counts_in_manifest_match_arrow(corpus_dir: Path) -> None:
    table = pq.read_table(corpus_dir / SHARD)
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    hits = int(pc.sum(pc.list_value_length(table.column("hit_x"))).as_py())
    assert manifest["shards"][1]["hits"] == hits
    assert np.isfinite(hits)
