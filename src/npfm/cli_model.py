"""Commands of the foundation model: pretrain, scaling, embed and probe."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from npfm.cli_common import clean_errors, console, progress_bar
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_json
from npfm.tasks.probe import probe as run_probe
from npfm.train.config import load_config
from npfm.train.embed import embed as run_embedding
from npfm.train.loop import pretrain as run_pretraining
from npfm.train.scaling import scaling_report, sweep


@clean_errors
def pretrain(
    config: Annotated[Path, typer.Argument(help="pretraining config YAML")],
    out: Annotated[Path, typer.Option(help="run directory (resumes from its checkpoint)")],
    steps: Annotated[int | None, typer.Option(help="override the config's steps")] = None,
    allow_config_change: Annotated[bool, typer.Option(
        help="resume even though the config changed; both configs are recorded")] = False,
) -> None:
    """Self-supervised pretraining; a killed run resumes where it stopped."""
    loaded = load_config(config, steps=steps)
    with Progress(TextColumn("[bold]pretraining"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]:.4f}"),
                  TextColumn("{task.fields[tps]:,.0f} tokens/s"), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task("pretraining", total=loaded.steps, loss=float("nan"), tps=0.0)
        last = run_pretraining(loaded, out, progress=lambda step, m: bar.update(
            task, completed=step, loss=m["loss"], tps=m["tokens_per_s"]),
            allow_config_change=allow_config_change)
    console.print(f"run {out}: step {last.get('step')}, loss {last.get('loss', float('nan')):.4f}"
                  f"; metrics in {out / 'metrics.jsonl'}, checkpoints in {out / 'checkpoints'}")


def _list(text: str, cast: Callable[[str], Any], flag: str) -> list[Any]:
    try:
        return [cast(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise NpfmError(f"{flag} {text!r}", "not a comma-separated list", f"e.g. {flag} "
                        "tiny,m1") from None


@clean_errors
def scaling(
    config: Annotated[Path, typer.Argument(help="base pretraining config YAML")],
    out: Annotated[Path, typer.Option(help="sweep directory (finished runs are reused)")],
    sizes: Annotated[str, typer.Option(help="model sizes, e.g. tiny,m1,m2")] = "tiny,m1,m2",
    steps: Annotated[str, typer.Option(help="step budgets, e.g. 50,100,200")] = "50,100,200",
    seeds: Annotated[str, typer.Option(help="seeds per point, e.g. 1,2,3")] = "1",
) -> None:
    """Sweep model sizes and step budgets; fit L = a N^-alpha + c with bootstrap CIs."""
    base = load_config(config)
    rows = sweep(base, _list(sizes, str, "--sizes"), _list(steps, int, "--steps"), out,
                 seeds=tuple(_list(seeds, int, "--seeds")))
    report = scaling_report(rows, out)
    table = Table(title=f"scaling fits ({out / 'scaling.json'}, {out / 'scaling.png'})")
    for col in ("fit", "alpha", "68% CI", "95% CI", "points"):
        table.add_column(col)
    for name, fit in report.items():
        if not isinstance(fit, dict) or "fit" not in fit:
            continue
        if fit["fit"] is None:
            table.add_row(name, "-", "-", "-", fit.get("reason", ""))
            continue
        ci = fit["fit"]["intervals"]["alpha"]
        table.add_row(name, f"{fit['fit']['alpha']:.3f}", f"{ci['68'][0]:.3f}-{ci['68'][1]:.3f}",
                      f"{ci['95'][0]:.3f}-{ci['95'][1]:.3f}", str(fit["fit"]["n_points"]))
    console.print(table)


@clean_errors
def embed(
    run: Annotated[Path, typer.Argument(help="pretraining run directory")],
    corpus: Annotated[Path, typer.Option(help="corpus to embed")],
    out: Annotated[Path, typer.Option(help="output directory for Parquet embeddings")],
    split: Annotated[str | None, typer.Option(help="only events of this split")] = None,
    layers: Annotated[str, typer.Option(help="last, all or mix (mean of the layers)")] = "last",
    batch_events: Annotated[int, typer.Option(help="events per forward pass")] = 16,
) -> None:
    """Export frozen per-hit embeddings of a corpus (or one split) from a run's checkpoint,
    and per-cell ones for a run pretrained with calorimeter cells."""
    total = Corpus.open(corpus).n_events
    with progress_bar() as bar:
        task = bar.add_task("embedding", total=total)
        summary = run_embedding(run, corpus, out, split=split, layers=layers,
                                batch_events=batch_events,
                                progress=lambda n: bar.update(task, completed=n))
    cells = f" and {summary['embedded_cells']} cells" if summary["cells"] else ""
    each = " hits and cells each" if summary["cells"] else " hits"
    console.print(f"wrote {out}: {summary['events']} events, {summary['embedded_hits']} hits"
                  f"{cells} x {summary['dimension']} ({layers}) in {summary['windows']} windows "
                  f"of at most {summary['max_hits']}{each}; see embeddings.json")


_SHORT = {"cos_phi": "cos φ", "sin_phi": "sin φ", "r_cm": "r", "z_cm": "z",
          "log10_pt": "p log pT", "particle_eta": "p eta", "particle_cos_phi": "p cos φ",
          "particle_sin_phi": "p sin φ"}


def probe_table(result: dict[str, Any]) -> Table:
    """The probe's figures: R^2 per target and k-NN purity per representation."""
    reps = result["linear_probe"]
    targets = list(next(iter(reps.values())))
    table = Table(title=f"probe of {result['run']} on {result['n_events']} {result['split']} "
                        f"events ({result['n_hits']} hits)",
                  caption=f"R2 of linear probes (p: the hit's truth particle); purity: "
                          f"same-track {result['k']}-NN purity [95% CI]")
    table.add_column("features")
    for name in targets:
        table.add_column(_SHORT.get(name, name), justify="right")
    table.add_column("purity", justify="right")
    for rep, r2 in reps.items():
        purity = result["knn_purity"][rep]
        table.add_row(rep, *(f"{r2[t]:.2f}" for t in targets),
                      f"{purity['value']:.3f} [{purity['lo']:.2f}, {purity['hi']:.2f}]")
    return table


@clean_errors
def probe(
    run: Annotated[Path, typer.Argument(help="pretraining run directory")],
    corpus: Annotated[Path, typer.Option(help="labelled corpus to probe on")],
    split: Annotated[str, typer.Option(help="split of the events probed")] = "test",
    events: Annotated[int, typer.Option(help="events probed (at most)")] = 80,
    out: Annotated[Path | None, typer.Option(help="write the figures to this JSON")] = None,
) -> None:
    """Representation quality of a run's frozen features: linear probes, same-track k-NN
    purity against raw hits and a random embedder, the loss against trivial predictors."""
    with Progress(TextColumn("[bold]probe"), TextColumn("{task.description}"),
                  console=console) as bar:
        task = bar.add_task("starting", total=None)
        result = run_probe(run, corpus, split=split, n_events=events,
                           progress=lambda message: bar.update(task, description=message))
    console.print(probe_table(result))
    loss = result["pretraining_loss"]
    console.print("pretraining objective on these events: " + ", ".join(
        f"{k} {v:.4f}" for k, v in loss.items() if k.endswith("loss")))
    if out is not None:
        atomic_write_json(out, result)
        console.print(f"wrote {out}")
