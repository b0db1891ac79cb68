"""The studies: label-reduction factor, verdicts, and a micro study end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from npfm.cli import app
from npfm.events.errors import NpfmError
from npfm.studies.config import load_study
from npfm.studies.efficiency import data_efficiency, reduction_factor
from npfm.studies.runner import better, combine
from npfm.studies.verdicts import m2, m4


def test_reduction_factor_interpolates_in_log_size() -> None:
    sizes = [10, 100, 1000]
    # the pretrained curve reaches 0.8 halfway (in log) between 10 and 100 labels
    out = reduction_factor(sizes, [0.7, 0.9, 0.95], target=0.8, lower=False)
    assert out["bound"] == "interpolated"
    assert out["factor"] == pytest.approx(1000 / 10**1.5)
    assert reduction_factor(sizes, [0.9, 0.95, 0.97], 0.8, False) == {"factor": 100.0,
                                                                       "bound": "lower"}
    assert reduction_factor(sizes, [0.5, 0.6, 0.7], 0.8, False)["factor"] is None
    # lower is better (a resolution): reached when at or below the target
    assert reduction_factor(sizes, [0.3, 0.1, 0.05], 0.2, True)["bound"] == "interpolated"


def test_no_reduction_is_measured_when_scratch_does_not_improve(tmp_path: Path) -> None:
    """All modes at the majority-class rate: M2 must not pass on an empty comparison."""
    flat = combine([_cell(0.877, 0.857, 0.893)])

    class Runner:
        study = type("S", (), {"data_efficiency": {"task": "pid", "corpus": "c", "run": "r",
                                                   "n_train": [10, 100], "seeds": [1],
                                                   "modes": ["frozen", "scratch"]}})
        out = tmp_path

        def events(self, task: str, corpus: str) -> dict:
            return {"train": list(range(100))}

        def cell(self, *args: object) -> dict:
            return _cell(0.877, 0.857, 0.893)

        def write(self, name: str, payload: dict) -> Path:
            return tmp_path / name

    result = data_efficiency(Runner())  # type: ignore[arg-type]
    assert flat["value"] == result["m2"]["target"]
    assert result["m2"]["factor"] is None
    assert m2(result)["verdict"] == "NO-GO"


def _cell(value: float, lo: float, hi: float, seed: int = 1) -> dict:
    return {"scores": {"accuracy": {"value": value, "lo": lo, "hi": hi}},
            "headline": "accuracy", "seed": seed, "n_test": 10}


def test_combine_and_better() -> None:
    c = combine([_cell(0.8, 0.75, 0.85), _cell(0.9, 0.86, 0.93, seed=2)])
    assert c["value"] == pytest.approx(0.85)
    assert (c["lo"], c["hi"]) == (0.75, 0.93)
    assert c["seeds"] == [1, 2]
    assert better(c, {"value": 0.7}, "accuracy")
    assert not better(c, {"value": 0.8}, "accuracy")
    assert better({"lo": 0.1, "hi": 0.2}, {"value": 0.3}, "resolution")


def test_verdicts_follow_their_rules() -> None:
    assert m2({"m2": {"factor": 5.0, "bound": "interpolated"}, "sizes": [1, 5]})["verdict"] == "GO"
    assert m2({"m2": {"factor": 2.0, "bound": "lower"}, "sizes": [1, 2]})["verdict"] == "NO-GO"
    assert m2(None)["verdict"] == "NOT RUN"
    cells = {"frozen": {"value": 0.9, "lo": 0.85, "hi": 0.95, "metric": "auc"},
             "adapter_only": {"value": 0.8, "lo": 0.7, "hi": 0.9, "metric": "auc"}}
    assert m4({"tasks": {"ep_electron": cells}})["verdict"] == "GO"
    cells["adapter_only"]["value"] = 0.88
    assert m4({"tasks": {"ep_electron": cells}})["verdict"] == "NO-GO"


def _study(tmp_path: Path, corpora: dict[str, Path]) -> Path:
    base = tmp_path / "pretrain.yaml"
    base.write_text(yaml.safe_dump({"corpora": [{"path": str(corpora["sphenix"])}],
                                    "size": "tiny", "objective": "knnn_leakfree", "k": 4,
                                    "batch_events": 4, "warmup": 1, "lr": 2e-3,
                                    "checkpoint_every": 6, "max_hits": 600}))
    study = {
        "corpora": {k: str(v) for k, v in corpora.items()},
        "pretraining": {"base": "pretrain.yaml", "steps": 6,
                        "runs": {"tpc": [{"corpus": "sphenix", "subsystems": ["TPC"]}],
                                 "mixed": [{"corpus": "sphenix"}, {"corpus": "zeus"}]}},
        "tasks": {"steps": 6, "batch_events": 4, "head": "linear",
                  "limit": {"train": 8, "validation": 4, "test": 8}},
        "data_efficiency": {"task": "noise", "corpus": "sphenix", "run": "mixed",
                            "n_train": [2, 8], "modes": ["frozen", "adapter_only", "scratch"],
                            "seeds": [1]},
        "transfer": {"tasks": {"noise": "sphenix", "ep_kinematics": "zeus"},
                     "runs": ["tpc", "mixed"], "seeds": [1],
                     "m1": {"mixed": "mixed", "silicon": {"noise": "tpc"},
                            "cross_facility": {"ep_kinematics": "tpc"}},
                     "m3": {"baseline": "tpc", "extended": ["mixed"], "tasks": ["noise"]}},
        "zeus_eic": {"run": "mixed", "corpus": "zeus", "tasks": ["ep_kinematics"],
                     "modes": ["frozen", "adapter_only"], "seeds": [1]},
        "probe": {"corpus": "sphenix", "runs": ["mixed"], "events": 6},
        "pid": {"corpus": "sphenix", "run": "mixed", "modes": ["raw"], "seeds": [1]},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_study_config_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("corpora: {}\nplots: 1\n")
    with pytest.raises(NpfmError, match="unknown section"):
        load_study(bad)


@pytest.mark.slow
def test_micro_study_writes_results_plots_and_report_and_resumes(
        tmp_path: Path, sim_corpora: dict[str, Path], tiny_run: Path) -> None:
    config = _study(tmp_path, sim_corpora)
    out = tmp_path / "studies"
    shutil.copytree(tiny_run, out / "runs" / "mixed")  # 12 >= 6 steps: not pretrained again
    runner = CliRunner()
    result = runner.invoke(app, ["study", "all", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("data_efficiency.json", "data_efficiency.png", "transfer.json",
                 "transfer.png", "zeus_eic.json", "verdicts.json", "report.html",
                 "probe.json", "pid.json"):
        assert (out / name).stat().st_size > 0, name
    cells = (out / "cells.jsonl").read_text().splitlines()
    # 2 sizes x 3 modes + 2 tasks x (2 runs + floor) + 2 modes, less the shared cells,
    # + the raw PID head
    keys = {json.loads(c)["key"] for c in cells}
    assert len(keys) == len(cells) == 6 + 6 + 1 + 1
    assert (out / "runs" / "tpc" / "checkpoints" / "latest").exists()
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert {v["verdict"] for v in verdicts.values()} <= {"GO", "NO-GO"}
    page = (out / "report.html").read_text()
    assert all(f">{m}<" in page for m in ("M1", "M2", "M3", "M4"))
    assert "data:image/png;base64," in page
    assert "Representation probe" in page
    assert "Particle identification: adapters against dE/dx" in page
    pid = json.loads((out / "pid.json").read_text())
    assert 0 <= pid["baseline"]["macro_recall"]["value"] <= 1
    probe = json.loads((out / "probe.json").read_text())["runs"]["mixed"]
    assert 0 < probe["knn_purity"]["raw"]["value"] <= 1
    first = json.loads(cells[0])["provenance"]["checkpoint_sha256"]
    assert first[:12] in page
    before = (out / "transfer.json").read_text()
    (out / "transfer.json").unlink()
    again = runner.invoke(app, ["study", "transfer", str(config), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert (out / "cells.jsonl").read_text().splitlines() == cells  # nothing retrained
    assert (out / "transfer.json").read_text() == before


def test_report_without_results_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out",
                                      str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "holds no study results" in result.output
