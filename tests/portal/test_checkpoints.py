"""Checkpoint pages and the readable provenance graph (labels, groups, legend)."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.portal.conftest import Portal

from npfm.catalog.edges import add_edge
from npfm.catalog.models import BenchmarkResult, Checkpoint, Dataset, open_catalog
from npfm.portal.provenance import GROUP, dataset_graph, render_svg


def test_checkpoint_page_shows_architecture_corpora_results_and_card(
        client: TestClient, portal: Portal) -> None:
    html = client.get("/checkpoints/1").text
    assert "<h1>run run · step 100</h1>" in html
    assert f'href="/datasets/{portal.ids["sphenix-pp200"]}">sphenix-pp200</a>' in html
    assert "tracking ari 0.912 · seed 1,2,3" in html
    assert "sha256 " + "c" * 64 in html
    assert client.get("/checkpoints/99").status_code == 404


def _page_with(client: TestClient, url: str, **fields: object) -> str:
    """The checkpoint page after setting ``fields`` of the catalog's one checkpoint."""
    with open_catalog(url)() as session:
        ckpt = session.scalars(select(Checkpoint)).one()
        for name, value in fields.items():
            setattr(ckpt, name, value)
        session.commit()
    return client.get("/checkpoints/1").text


def test_checkpoint_page_draws_the_loss_curve_of_its_run(write_portal: tuple,
                                                         tmp_path) -> None:
    test_client, url, _ = write_portal
    assert "No loss log at" in test_client.get("/checkpoints/1").text
    run = tmp_path / "run"
    run.mkdir()
    losses = [2.0, 1.5, float("nan"), 1.0, 0.5]
    (run / "metrics.jsonl").write_text("".join(
        f'{{"step": {i + 1}, "loss": {v}}}\n' for i, v in enumerate(losses)) + "not json\n")
    html = _page_with(test_client, url, run_path=str(run))
    svg = html.split('<svg id="loss-curve"')[1].split("</svg>")[0]
    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    assert len(points) == 4  # the NaN step and the bad line are skipped
    ys = [float(p.split(",")[1]) for p in points]
    assert ys == sorted(ys)  # falling loss: rising y in SVG coordinates
    assert "step 1" in svg
    assert "step 5" in svg
    assert "loss 2" in svg


def test_architecture_and_settings_come_from_the_config(write_portal: tuple) -> None:
    test_client, url, _ = write_portal
    html = _page_with(test_client, url, config={
        "backbone": "mamba2", "size": "tiny", "objective": "masked", "steps": 100,
        "lr": 0.002, "corpora": [{"path": "/x"}]})
    architecture = html.split('id="architecture">')[1].split("</table>")[0]
    assert "<th>backbone</th><td>mamba2</td>" in architecture
    assert "<th>objective</th><td>masked</td>" in architecture
    assert "<th>lr</th><td>0.002</td>" in html
    assert "Architecture: backbone mamba2, size tiny, objective masked." in html


def test_provenance_labels_are_human_and_many_results_collapse(write_portal: tuple) -> None:
    _, url, portal = write_portal
    with open_catalog(url)() as session:
        ckpt = session.scalars(select(Checkpoint)).one()
        for seed in range(GROUP + 4):
            result = BenchmarkResult(
                name=f"noise|sphenix|mixed|frozen|{seed}|6", task="noise", metric="accuracy",
                value=0.9 + seed / 100, seeds=[seed], checkpoint_id=ckpt.id,
                details={"config": {"mode": "frozen", "n_train": 6}})
            session.add(result)
            session.flush()
            add_edge(session, "benchmark_result", str(result.id), "checkpoint",
                     ckpt.model_sha256, "evaluates")
        session.commit()
        dataset = session.get(Dataset, portal.ids["sphenix-pp200"])
        graph = dataset_graph(session, dataset)
    assert "noise accuracy 0.9 · frozen · n=6 · seed 0" in graph.labels.values()
    svg = render_svg(graph)
    assert "noise|sphenix" not in svg
    shown = svg.count('class="node benchmark_result"')
    assert shown == GROUP - 1
    assert f"+ {len([n for n in graph.labels if n[0] == 'benchmark_result']) - shown} more" \
           f" results" in svg
    assert '<g class="legend">' in svg
    edges = re.findall(r'<g class="edge [^"]*">(.*?)</g>', svg)
    assert edges
    assert not any("<text" in e for e in edges)  # relations: line style and legend


def test_checkpoint_page_shows_the_probe_of_its_weights(write_portal: tuple,
                                                        tmp_path) -> None:
    test_client, url, _ = write_portal
    run = tmp_path / "run"
    run.mkdir()
    probe = {"checkpoint_sha256": "c" * 64, "k": 10, "corpus": "/c/sphenix", "split": "test",
             "n_events": 80, "n_hits": 36574,
             "knn_purity": {"raw": {"value": 0.8373, "lo": 0.826, "hi": 0.849},
                            "mix": {"value": 0.8183, "lo": 0.806, "hi": 0.830}},
             "linear_probe": {"raw": {"eta": 1.0, "cos_phi": 0.999, "r_cm": 0.98},
                              "mix": {"eta": 0.991, "cos_phi": 0.987, "log10_pt": 0.12}}}
    (run / "probe.json").write_text(json.dumps(probe))
    html = _page_with(test_client, url, run_path=str(run), model_sha256="c" * 64)
    table = html.split('id="probe">')[1].split("</table>")[0]
    assert "<td>raw</td><td>0.837 [0.826, 0.849]</td>" in table
    assert "<td>mix</td><td>0.818 [0.806, 0.830]</td>" in table
    assert "<td>0.12</td>" in table  # mix: R2 of log pT
    assert "36574 hits" in html
    other = _page_with(test_client, url, model_sha256="d" * 64)  # a probe of other weights
    assert 'id="probe"' not in other
    assert "No probe of these weights" in other


def test_result_page_plots_the_result_beside_its_study(write_portal: tuple) -> None:
    test_client, url, _ = write_portal
    report = "/studies/results.json"
    with open_catalog(url)() as session:
        ids = []
        for mode, value in (("raw", 0.83), ("frozen", 0.70), ("adapter_only", 0.72)):
            result = BenchmarkResult(
                name=f"silicon_tracking|sphenix|tpc_silicon|{mode}|1|None",
                task="silicon_tracking", metric="silicon_ari", value=value,
                lo=value - 0.03, hi=value + 0.03, seeds=[1], report_path=report,
                details={"config": {"mode": mode, "run": "/runs/tpc_silicon"}})
            session.add(result)
            session.flush()
            ids.append(result.id)
        session.add(BenchmarkResult(name="other", task="pid_track", metric="macro_recall",
                                    value=0.3, seeds=[1], report_path=report))
        session.commit()
    html = test_client.get(f"/results/{ids[1]}").text
    svg = html.split('<svg id="result-plot"')[1].split("</svg>")[0]
    assert svg.count("<circle") == 3  # the three silicon-tracking cells, not the PID one
    assert svg.count('class="current"') == 1
    assert svg.count('class="interval"') == 3
    current = re.search(r'<circle class="current" cx="([0-9.]+)"', svg).group(1)
    others = [float(c) for c in re.findall(r'<circle class="value" cx="([0-9.]+)"', svg)]
    assert float(current) < min(others)  # frozen, 0.70, is the lowest value
    assert "frozen · tpc_silicon · seed 1" in svg
    assert "the other 2 result(s)" in html
