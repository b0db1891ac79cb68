"""Scaling-law fits recover known power laws with honest bootstrap intervals; the report
refuses too few points; a tiny real sweep writes its rows and skips finished runs."""

import json
from pathlib import Path

import numpy as np
import pytest

from npfm.detectors.production import SimulationJob, run_jobs
from npfm.train import scaling
from npfm.train.config import load_config
from npfm.train.scaling import fit_power_law, scaling_report, sweep


def _synthetic(seed: int = 0, noise: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(1e4, 1e8, 8), 2)
    loss = 50.0 * n ** -0.3 + 1.5
    return n, loss * (1 + noise * rng.standard_normal(len(n)))


def test_fit_recovers_known_power_law_and_intervals_cover_it() -> None:
    covered = 0
    for draw in range(8):  # the 95% interval should miss the truth in ~5% of noise draws
        n, loss = _synthetic(seed=draw)
        fit = fit_power_law(n, loss, n_bootstrap=100, seed=0)
        assert fit.alpha == pytest.approx(0.3, abs=0.05)
        assert fit.c == pytest.approx(1.5, abs=0.1)
        assert fit.a == pytest.approx(50.0, rel=0.5)
        lo, hi = fit.intervals["alpha"]["95"]
        lo68, hi68 = fit.intervals["alpha"]["68"]
        assert lo <= lo68 <= hi68 <= hi
        covered += lo <= 0.3 <= hi
        assert fit.n_points == 16
        assert len(fit.samples) + fit.n_failed == 100
        assert fit.predict([1e6])[0] == pytest.approx(50.0 * 1e6 ** -0.3 + 1.5, rel=0.02)
    assert covered >= 7


def test_bootstrap_is_deterministic_per_seed() -> None:
    n, loss = _synthetic()
    a, b = (fit_power_law(n, loss, n_bootstrap=50, seed=7) for _ in range(2))
    assert a.intervals == b.intervals
    np.testing.assert_array_equal(a.samples, b.samples)
    assert fit_power_law(n, loss, n_bootstrap=50, seed=8).intervals != a.intervals


def test_fit_refuses_fewer_than_three_distinct_n() -> None:
    with pytest.raises(ValueError, match="3 distinct"):
        fit_power_law([1e4, 1e4, 1e5], [2.0, 2.1, 1.8], n_bootstrap=10)


def _rows(sizes: dict[str, int], steps: list[int]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for size, params in sizes.items():
        for s in steps:
            tokens = 1000 * s
            loss = 40.0 * params ** -0.3 + 30.0 * tokens ** -0.25 + 1.0
            rows.append({"size": size, "parameters": params, "steps": s, "tokens": tokens,
                         "final_loss": loss, "seed": 1})
    return rows


def test_scaling_report_writes_json_and_png(tmp_path: Path) -> None:
    rows = _rows({"m1": 10**5, "m2": 4 * 10**5, "m3": 16 * 10**5, "m4": 64 * 10**5},
                 [100, 200, 400, 800])
    report = scaling_report(rows, tmp_path, n_bootstrap=100)
    assert json.loads((tmp_path / "scaling.json").read_text()) == report
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_n, by_d = report["loss_vs_parameters"], report["loss_vs_tokens"]
    assert by_n["x"] == [1e5, 4e5, 16e5, 64e5]  # largest steps per size
    assert by_n["fit"]["alpha"] == pytest.approx(0.3, abs=0.05)
    assert by_d["size"] == "m4"
    assert by_d["fit"]["alpha"] == pytest.approx(0.25, abs=0.05)
    assert by_n["reason"] is None


def test_scaling_report_refuses_too_few_points(tmp_path: Path) -> None:
    report = scaling_report(_rows({"m1": 10**5, "m2": 4 * 10**5}, [100, 200, 400]), tmp_path,
                            n_bootstrap=20)
    by_n = report["loss_vs_parameters"]
    assert by_n["fit"] is None
    assert "only 2 distinct parameter count" in by_n["reason"]
    assert report["loss_vs_tokens"]["fit"] is not None
    assert (tmp_path / "scaling.png").exists()


def test_sweep_smoke_writes_rows_and_skips_finished_runs(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    corpus = tmp_path / "corpus"
    run_jobs([SimulationJob("zeus", "ep_hera", 8, seed=1, shard_events=8)], corpus)
    body = {"corpora": [{"path": str(corpus), "name": "sim"}], "size": "tiny",
            "objective": "knnn_leakfree", "k": 6, "batch_events": 4, "lr": 3.0e-3,
            "warmup": 1, "max_hits": 200}
    (tmp_path / "config.yaml").write_text(json.dumps(body))
    base = load_config(tmp_path / "config.yaml")
    out = tmp_path / "sweep"
    rows = sweep(base, ["tiny"], [3, 6], out)
    assert json.loads((out / "sweep.json").read_text()) == rows
    assert [(r["size"], r["steps"], r["seed"]) for r in rows] == [("tiny", 3, 1), ("tiny", 6, 1)]
    for r in rows:
        log = [json.loads(x) for x in (out / f"tiny-{r['steps']}-s1/metrics.jsonl")
               .read_text().splitlines()]
        assert len(log) == r["steps"]
        assert r["tokens"] == sum(x["tokens"] for x in log) > 0
        assert r["final_loss"] == log[-1]["loss"]  # last 10% of 3 or 6 steps is one step
        assert r["parameters"] > 0
    def fail(*_: object, **__: object) -> None:
        raise AssertionError("finished run was retrained")

    monkeypatch.setattr(scaling, "pretrain", fail)
    assert sweep(base, ["tiny"], [3, 6], out) == rows
