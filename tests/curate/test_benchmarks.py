from pathlib import Path

import pytest

from npfm.curate.benchmarks import load_all, load_benchmark
from npfm.events.errors import NpfmError

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_every_family_is_defined_and_valid() -> None:
    defs = load_all(BENCHMARKS)
    assert set(defs) == {"sphenix_tpc", "sphenix_tpc_silicon", "lep_ee", "zeus_ep", "eic_ep"}
    assert defs["sphenix_tpc"]["reference"]["tracking"]["ari_event_mean"] == 0.9448
    assert defs["eic_ep"]["tasks"].keys() == defs["zeus_ep"]["tasks"].keys()


@pytest.mark.parametrize(("edit", "message"), [
    ("corpus: {subsystems: [HCAL]}", r"corpus.subsystems: unknown subsystem 'HCAL'"),
    ("version: 1.5", r"version: 1.5"),
    ("tasks: {a: {level: hit, labels: [hit_colour], metrics: [accuracy]}}",
     r"tasks.a.labels: unknown label 'hit_colour'"),
    ("tasks: {a: {level: hit, labels: [hit_noise], metrics: [f7]}}",
     r"tasks.a.metrics: unknown metric 'f7'"),
])
def test_bad_definitions_name_the_key(tmp_path: Path, edit: str, message: str) -> None:
    base = {"name": "name: x", "version": "version: 1", "corpus": "corpus: {}",
            "splits": "splits: {train: train}",
            "tasks": "tasks: {a: {level: hit, labels: [hit_noise], metrics: [accuracy]}}"}
    base[edit.split(":")[0]] = edit
    path = tmp_path / "x.yaml"
    path.write_text("\n".join(base.values()) + "\n")
    with pytest.raises(NpfmError, match=message):
        load_benchmark(path)
