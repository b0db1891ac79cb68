"""Commands of the downstream part: ``npfm task``, ``npfm study ...`` and ``npfm report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from npfm.cli_common import clean_errors, console, progress_bar
from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_json
from npfm.studies.baselines import tracking_baselines
from npfm.studies.calo import calo_study
from npfm.studies.config import load_study
from npfm.studies.efficiency import data_efficiency
from npfm.studies.pid import pid_study
from npfm.studies.report import render_report
from npfm.studies.representations import probe_runs
from npfm.studies.runner import StudyRunner, combine
from npfm.studies.transfer import transfer_matrix, zeus_eic
from npfm.tasks.backbone import MODES
from npfm.tasks.fit import run_task
from npfm.tasks.specs import TASKS

study_app = typer.Typer(help="The downstream studies (data efficiency, transfer, ZEUS->EIC).",
                        no_args_is_help=True)


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise NpfmError(f"--seeds {text!r}", "not a comma-separated list of integers",
                        "write e.g. --seeds 1,2,3") from None


def _summary(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{rows[0]['task']}: {rows[0]['mode']} ({rows[0]['head']} head)")
    for col in ("seed", "metric", "value", "95% CI"):
        table.add_column(col)
    for row in rows:
        for name, score in row["scores"].items():
            if isinstance(score, dict) and "value" in score:
                table.add_row(str(row["seed"]), name, f"{score['value']:.4f}",
                              f"{score['lo']:.4f} - {score['hi']:.4f}")
    return table


@clean_errors
def task(
    name: Annotated[str, typer.Argument(help="task: " + ", ".join(TASKS))],
    corpus: Annotated[Path, typer.Option(help="labelled corpus (its splits are used)")],
    run: Annotated[Path, typer.Option(help="pretraining run (weights and architecture)")],
    out: Annotated[Path, typer.Option(help="results JSON to write")],
    mode: Annotated[str, typer.Option(help="training mode: " + ", ".join(MODES))] = "frozen",
    head: Annotated[str, typer.Option(help="linear (probe) or attention")] = "attention",
    seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "1",
    train_events: Annotated[int | None, typer.Option(help="labelled events to use")] = None,
    steps: Annotated[int, typer.Option(help="optimiser steps")] = 300,
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 3e-3,
) -> None:
    """Train a task adapter on a corpus and score it on its test split."""
    rows = []
    with console.status("") as status:
        for seed in _seeds(seeds):
            status.update(f"{name}: {mode}, seed {seed}")
            rows.append(run_task(name, corpus, run, mode=mode, seed=seed, n_train=train_events,
                                 steps=steps, lr=lr, head=head))
    summary = combine(rows)
    atomic_write_json(out, json.loads(json.dumps({"summary": summary, "runs": rows},
                                                 default=float)))
    console.print(_summary(rows))
    console.print(f"{rows[0]['headline']}: {summary['value']:.4f} "
                  f"[{summary['lo']:.4f}, {summary['hi']:.4f}] over seeds {summary['seeds']}; "
                  f"wrote {out}")


def _runner(config: Path, out: Path) -> StudyRunner:
    study = load_study(config)
    return StudyRunner(study, out, progress=lambda message: console.log(message))


@study_app.command("data-efficiency")
@clean_errors
def study_efficiency(config: Annotated[Path, typer.Argument(help="study YAML")],
                     out: Annotated[Path, typer.Option(help="studies directory")]) -> None:
    """Quality against labelled events: FM + adapter, AdapterOnly and from scratch (M2)."""
    result = data_efficiency(_runner(config, out))
    m2 = result.get("m2", {})
    console.print(f"label-reduction factor: {m2.get('factor')} ({m2.get('bound')}); "
                  f"wrote {out / 'data_efficiency.json'}")


@study_app.command("transfer")
@clean_errors
def study_transfer(config: Annotated[Path, typer.Argument(help="study YAML")],
                   out: Annotated[Path, typer.Option(help="studies directory")]) -> None:
    """Pretraining corpus x task family, frozen backbones (M1, M3)."""
    transfer_matrix(_runner(config, out))
    console.print(f"wrote {out / 'transfer.json'} and {out / 'transfer.png'}")


@study_app.command("zeus-eic")
@clean_errors
def study_zeus_eic(config: Annotated[Path, typer.Argument(help="study YAML")],
                   out: Annotated[Path, typer.Option(help="studies directory")]) -> None:
    """ZEUS-pretrained representations on EIC-proxy tasks (M4)."""
    zeus_eic(_runner(config, out))
    console.print(f"wrote {out / 'zeus_eic.json'}")


def demo_pretraining(config: Path, out: Path) -> StudyRunner:
    """Pretrain every run of a study (the demo's step 5), one progress bar each."""
    runner = _runner(config, out)
    for run in runner.study.runs:
        steps = runner.study.pretrain_config(run).steps
        with progress_bar() as bar:
            task = bar.add_task(f"pretraining {run}", total=steps)

            def advance(step: int, _metrics: dict[str, Any], bar: Any = bar,
                        task: Any = task) -> None:
                bar.update(task, completed=step)

            runner.run_dir(run, progress=advance)
    return runner


@study_app.command("baselines")
@clean_errors
def study_baselines(config: Annotated[Path, typer.Argument(help="study YAML")],
                    out: Annotated[Path, typer.Option(help="studies directory")]) -> None:
    """Hough, DBSCAN and GNN track finders on the study's tracking events."""
    result = tracking_baselines(_runner(config, out))
    for name, scores in result["finders"].items():
        console.print(f"{name}: ARI {scores['ari']['value']:.3f}, efficiency "
                      f"{scores['efficiency']['value']:.3f}, "
                      f"{scores['seconds_per_event'] * 1e3:.1f} ms/event")


def _section_runner(config: Path, out: Path, section: str) -> StudyRunner:
    """The study's runner; the config must have ``section``."""
    runner = _runner(config, out)
    if not getattr(runner.study, section):
        raise NpfmError(str(config), f"has no {section} section",
                        f"add {section}: {{corpus: ...}}")
    return runner


@study_app.command("pid")
@clean_errors
def study_pid(config: Annotated[Path, typer.Argument(help="study YAML")],
              out: Annotated[Path, typer.Option(help="studies directory")]) -> None:
    """The dE/dx PID baseline and the study's PID adapters on the same tracks."""
    result = pid_study(_section_runner(config, out, "pid"))
    recall = result["baseline"]["macro_recall"]
    console.print(f"dE/dx baseline: macro recall {recall['value']:.3f} "
                  f"[{recall['lo']:.3f}, {recall['hi']:.3f}] on {result['n_test']} events")


@study_app.command("calo")
@clean_errors
def study_calo(config: Annotated[Path, typer.Argument(help="study YAML")],
               out: Annotated[Path, typer.Option(help="studies directory")]) -> None:
    """Electron/pion separation: E/p and shower-shape baselines and the study's adapters."""
    result = calo_study(_section_runner(config, out, "calo"))
    for name, scores in result["baselines"].items():
        rej = scores["rejection_at_90"]
        console.print(f"{name}: pion rejection at 90% electron efficiency {rej['value']:.1f} "
                      f"[{rej['lo']:.1f}, {rej['hi']:.1f}] on {result['n_test']} events")


@study_app.command("all")
@clean_errors
def study_all(config: Annotated[Path, typer.Argument(help="study YAML")],
              out: Annotated[Path, typer.Option(help="studies directory")],
              report_file: Annotated[Path | None, typer.Option(
                  "--report", help="HTML report to write (default OUT/report.html)")] = None,
              ) -> None:
    """The probe, the three studies and the baselines, then the report; resumes after a
    kill."""
    runner = _runner(config, out)
    if runner.study.probe:
        probe_runs(runner)
    if runner.study.data_efficiency:
        data_efficiency(runner)
    if runner.study.transfer:
        transfer_matrix(runner)
    if runner.study.zeus_eic:
        zeus_eic(runner)
    if runner.study.baselines:
        tracking_baselines(runner)
    if runner.study.pid:
        pid_study(runner)
    if runner.study.calo:
        calo_study(runner)
    report(out, report_file or out / "report.html")


@clean_errors
def report(studies: Annotated[Path, typer.Argument(help="studies directory")],
           out: Annotated[Path, typer.Option(help="HTML file to write")] = Path("report.html"),
           ) -> None:
    """Render the self-contained HTML report with the M1-M4 verdicts."""
    summary = render_report(studies, out)
    verdicts = ", ".join(f"{k} {v}" for k, v in summary["verdicts"].items())
    console.print(f"report {out}: {summary['cells']} trained adapters; {verdicts}")
