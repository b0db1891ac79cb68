"""The ``npfm`` command line."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from npfm import __version__, cli_catalog, cli_lqcd, cli_model, cli_portal, cli_tasks
from npfm.cli_common import clean_errors, console, progress_bar
from npfm.curate.pipeline import curate as run_curation
from npfm.curate.recipe import load_recipe
from npfm.detectors import list_geometries, validation
from npfm.detectors.production import SimulationJob, run_job, run_jobs
from npfm.events import vocabulary
from npfm.events.corpus import Corpus
from npfm.events.errors import NpfmError
from npfm.events.metadata import Citation, Provenance
from npfm.events.summary import QUANTILES, Summary, plot_hits, summarize
from npfm.events.writer import CorpusWriter, file_record
from npfm.formats import aleph_text, export, trackml
from npfm.formats.ingest import ingest
from npfm.physics import CONFIGS, list_configs
from npfm.physics.generate import default_shard_events
from npfm.train.report import plot_loss

app = typer.Typer(help="npfm: AI-ready corpora of nuclear- and particle-physics data.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
@app.command()
def version() -> None:
    """Print the npfm version."""
    console.print(__version__)


@app.command()
@clean_errors
def validate(corpus: Annotated[Path, typer.Argument(help="corpus directory")]) -> None:
    """Check every shard against the manifest (sha256, counts) and the schema."""
    opened = Corpus.open(corpus)
    with progress_bar() as bar:
        task = bar.add_task("validating", total=opened.n_events)
        totals = opened.validate(progress=lambda n: bar.advance(task, n))
    console.print(f"[green]OK[/] {corpus}: {len(opened.shards)} shards, "
                  + ", ".join(f"{v} {k}" for k, v in totals.items()))


def _row_order(key: str) -> tuple[int, int]:
    """Hits, then objects, then particles; within each, 'all' then vocabulary order."""
    group, name = key.split("/", 1)
    vocab = {"hits": "subsystems", "objects": "object_types"}.get(group)
    rank = -1 if name == "all" or vocab is None else vocabulary.names(vocab).index(name)
    return ("hits", "objects", "particles").index(group), rank


def _summary_table(summary: Summary, title: str) -> Table:
    table = Table(title=title)
    for col in ("per event", "events", "mean", *(f"q{int(q * 100)}" for q in QUANTILES)):
        table.add_column(col, justify="right" if col != "per event" else "left")
    for key in sorted(summary.hist, key=_row_order):
        n, mean, qs = summary.stats(key)
        if n:
            table.add_row(key, str(n), f"{mean:.1f}", *map(str, qs))
    return table


@app.command()
@clean_errors
def inspect(corpus: Annotated[Path, typer.Argument(help="corpus directory")],
            plot: Annotated[Path | None, typer.Option(help="write a PNG histogram of hits "
                                                      "per event per subsystem")] = None
            ) -> None:
    """Summarise a corpus: events, hits per event per subsystem, labels present."""
    opened = Corpus.open(corpus)
    with progress_bar() as bar:
        task = bar.add_task("reading", total=opened.n_events)
        summary = summarize(opened, progress=lambda n: bar.advance(task, n))
    print_summary(opened, summary)
    if plot is not None:
        console.print(f"plot: {plot_hits(summary, plot)}")


def print_summary(corpus: Corpus, summary: Summary) -> None:
    m = corpus.manifest
    console.print(f"[bold]{m['name']}[/] ({corpus.path}): schema v{m['schema_version']}, "
                  f"{len(m['shards'])} shards, {m['bytes'] / 1e6:.2f} MB; {m['events']} "
                  f"events, {m['hits']} hits, {m['particles']} particles, "
                  f"{m['objects']} objects")
    for key, counter in summary.categories.items():
        console.print(f"  {key}: " + ", ".join(f"{k} {v}" for k, v in counter.most_common()))
    for name, doc in corpus.extensions.items():
        console.print(f"  extension {name}: {doc}", highlight=False)
    console.print(_summary_table(summary, "counts per event (events with that group)"))
    labels = Table(title="fields present (events with non-null values)")
    labels.add_column("field")
    labels.add_column("events", justify="right")
    labels.add_column("fraction", justify="right")
    for col, n in summary.present.items():
        labels.add_row(col, str(n), f"{n / max(summary.events, 1):.2f}")
    console.print(labels)


@app.command("import-aleph")
@clean_errors
def import_aleph(
    aleph_dir: Annotated[Path, typer.Argument(help="directory of MIT ALEPH .aleph files")],
    out: Annotated[Path, typer.Option(help="corpus directory to write (resumes)")],
) -> None:
    """Import MIT ALEPH archive files into a corpus, linking reconstructed and truth events."""
    if not aleph_dir.is_dir():
        raise NpfmError(str(aleph_dir), "directory not found", "point at the MIT ALEPH "
                        "archive files (e.g. ../shared/data/aleph)")
    paths = sorted(p for p in aleph_dir.glob("*.aleph") if p.is_file())
    if not paths:
        raise NpfmError(str(aleph_dir), "no .aleph files", "point at the MIT ALEPH archive "
                        "files (e.g. ../shared/data/aleph)")
    inputs = tuple(file_record(p) for p in paths)
    writer = CorpusWriter(out, name="aleph-archive", citation=Citation(
        title="ALEPH archived events in the npfm event model",
        description="Reconstructed energy-flow objects linked to generator-level "
                    "particles, from the MIT ALEPH open-data archive."),
        provenance=Provenance(command="npfm import-aleph", config={"aleph_dir": str(aleph_dir)},
                              inputs=inputs), shard_events=250)
    stats = {"linked": 0, "reco_only": 0, "truth_only": 0}
    with progress_bar(bytes_=True) as bar:
        task = bar.add_task("importing ALEPH", total=sum(i["bytes"] for i in inputs))
        events = aleph_text.read_archive(paths, progress=lambda n: bar.advance(task, n),
                                         stats=stats, finite=True)
        ingest(events, writer, source=str(aleph_dir), batch_events=250)
    writer.close()
    console.print(f"imported: {stats['linked']} linked reco+truth events, "
                  f"{stats['reco_only']} reco-only, {stats['truth_only']} truth-only")


@app.command("import-trackml")
@clean_errors
def import_trackml(
    trackml_dir: Annotated[Path, typer.Argument(help="TrackML/ACTS CSV directory "
                                                "(eventNNNNNNNNN-hits.csv[.gz], ...)")],
    out: Annotated[Path, typer.Option(help="corpus directory to write (resumes)")],
    run: Annotated[int, typer.Option(help="run number of every event")] = 0,
) -> None:
    """Import TrackML CSV events (hits, cells, particles, truth) into a corpus."""
    numbered = trackml.events(trackml_dir)
    inputs = tuple(file_record(f) for _, files in numbered for f in files.values())
    writer = CorpusWriter(out, name="trackml", citation=Citation(
        title="TrackML events in the npfm event model",
        description="Hits (PIXEL/STRIP, generic detector ids), truth particles and hit-"
                    "particle links from TrackML-format CSV files."),
        provenance=Provenance(command="npfm import-trackml",
                              config={"trackml_dir": str(trackml_dir), "run": run},
                              inputs=inputs), shard_events=100)
    with progress_bar() as bar:
        task = bar.add_task("importing TrackML", total=len(numbered))
        events = trackml.read_trackml(trackml_dir, run=run, progress=lambda _: bar.advance(
            task, 1))
        ingest(events, writer, source=str(trackml_dir), batch_events=100)
    writer.close()
    console.print(f"imported {len(numbered)} TrackML events into {out}")


#: The demo's simulated corpora: (detector, physics) pairs, one corpus each.
DEMO_PAIRS = (("sphenix", "pp200"), ("aleph", "ee_z"), ("zeus", "ep_hera"), ("epic", "ep_eic"))
#: Simulation options of the demo per detector: ePIC without its Barrel Imaging Calorimeter,
#: which makes the simulation ~7x slower and events ~4x more hits (docs/performance.md).
DEMO_SIM_OPTIONS = {"epic": {"calorimeter": False}}


@app.command()
@clean_errors
def demo(aleph_dir: Annotated[Path, typer.Option(help="directory of MIT ALEPH .aleph files")],
         out: Annotated[Path, typer.Option(help="output directory")] = Path("demo"),
         events: Annotated[int, typer.Option(help="simulated events per pair")] = 250,
         workers: Annotated[int, typer.Option(help="local worker processes")] = 2,
         recipe_file: Annotated[Path, typer.Option("--recipe", help="curation recipe")] = Path(
             "recipes/phase1.yaml"),
         study_config: Annotated[Path, typer.Option("--study", help="study config")] = Path(
             "configs/studies-demo.yaml"),
         ) -> None:
    """The main job: real ALEPH archive data and simulated sPHENIX pp200, ALEPH ee_z, ZEUS
    ep_hera and ePIC ep_eic corpora, validated and summarised; a physics report; the
    Phase-I curation recipe at 1% size; tiny pretraining runs (mixed and single-domain);
    the downstream studies and their report; a small lattice ensemble; all registered in a
    catalog, with the inventory of real public datasets."""
    archive = out / "aleph-archive"
    sims = {f"{d}-{p}": out / "sim" / f"{d}-{p}" for d, p in DEMO_PAIRS}
    ensemble = out / "lattice-4x4x4x4"
    for path in (archive, *sims.values(), out / "phase1", out / "studies", ensemble):
        if path.exists():  # outputs of an earlier demo
            shutil.rmtree(path)
    console.rule("1. real data: the MIT ALEPH archive")
    import_aleph(aleph_dir, archive)
    validate(archive)
    inspect(archive, plot=out / "aleph-archive.png")
    console.rule("2. simulation: four detectors, one corpus each")
    with progress_bar() as bar:
        task = bar.add_task("simulating", total=events * len(DEMO_PAIRS))
        for i, (detector, physics) in enumerate(DEMO_PAIRS):
            job = SimulationJob(detector, physics, events, seed=i + 1, run=i + 1,
                                shard_events=max(1, -(-events // 2)),
                                sim_options=DEMO_SIM_OPTIONS.get(detector, {}))
            run_jobs([job], sims[f"{detector}-{physics}"], workers=workers,
                     command="npfm demo", progress=lambda n: bar.advance(task, n))
    for path in sims.values():
        validate(path)
    inspect(sims["sphenix-pp200"], plot=out / "sphenix-pp200.png")
    console.rule("3. physics validation")
    validate_physics(out / "physics-validation", seed=1, scale=0.5)
    console.rule("4. curation: the Phase-I recipe at 1% size")
    curate(recipe_file, out / "phase1", scale=0.01, keep_going=False)
    study = out / "studies.yaml"
    write_demo_study(study_config, study, {**sims, "aleph-archive": archive})
    console.rule("5. pretraining: tiny Mamba-2 runs (mixed-domain and single-domain)")
    runner = cli_tasks.demo_pretraining(study, out / "studies")
    first, last = plot_loss(runner.out / "runs" / "mixed" / "metrics.jsonl",
                            out / "pretrain-loss.png")
    console.print(f"mixed run loss: {first:.4f} (first 10 steps) -> {last:.4f} (last 10 "
                  f"steps); plot {out / 'pretrain-loss.png'}")
    console.rule("6. downstream studies and the report")
    cli_tasks.study_all(study, out / "studies", report_file=out / "report.html")
    console.rule("7. lattice QCD: a small quenched SU(3) ensemble (4^4, beta 6.0)")
    cli_lqcd.generate_cmd(ensemble, lattice="4", configs=4, therm=20, separation=3)
    console.rule("8. catalog")
    db = f"sqlite:///{(out / 'catalog.sqlite').resolve()}"
    runs = sorted((runner.out / "runs").iterdir())
    cli_catalog.catalog_register([archive, *sims.values(), out / "phase1", ensemble, *runs,
                                  out / "studies" / "results.json"], db=db)
    cli_catalog.catalog_register_inventory(db=db)
    console.print(f"demo outputs in {out}/: corpora (aleph-archive/, sim/, phase1/), "
                  f"{ensemble.name}/ (ILDG), "
                  "physics-validation/report.md, studies/ (runs, results), report.html, "
                  f"catalog.sqlite. Browse them: npfm portal serve --db {db} "
                  "(then open http://127.0.0.1:8000/)")


def write_demo_study(template: Path, out: Path, corpora: dict[str, Path]) -> None:
    """The study config ``template`` with its corpora and base config as absolute paths,
    written to ``out`` (so it can be re-run: npfm study all OUT --out DIR)."""
    study = yaml.safe_load(template.read_text(encoding="utf-8"))
    names = {name: Path(path).name for name, path in study["corpora"].items()}
    missing = [n for n, leaf in names.items() if leaf not in corpora]
    if missing:
        raise NpfmError(f"{template} corpora {missing}", "not produced by the demo",
                        f"use corpora named after {sorted(corpora)}")
    study["corpora"] = {n: str(corpora[leaf].resolve()) for n, leaf in names.items()}
    study["pretraining"]["base"] = str((template.parent / study["pretraining"]["base"])
                                       .resolve())
    out.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")


def _options(pairs: list[str], flag: str) -> dict[str, Any]:
    """``key=value`` pairs; values are read as YAML (numbers, booleans, lists)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise NpfmError(f"{flag} {pair!r}", "not of the form key=value",
                            f"write e.g. {flag} q2_min=25")
        out[key] = yaml.safe_load(value)
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


@app.command()
@clean_errors
def simulate(
    detector: Annotated[str, typer.Option(help="geometry: " + ", ".join(list_geometries()))],
    physics: Annotated[str, typer.Option(help="configuration: " + ", ".join(list_configs()))],
    events: Annotated[int, typer.Option(help="number of events")],
    out: Annotated[Path, typer.Option(help="corpus directory to write (resumes a killed run)")],
    workers: Annotated[int, typer.Option(help="local worker processes")] = 1,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. "
                                                  "tcp://host:8786; overrides --workers")] = None,
    seed: Annotated[int, typer.Option(help="job seed; shard i uses seeds derived from "
                                      "(seed, i)")] = 1,
    shard_events: Annotated[int | None, typer.Option(
        help="events per shard (default 1000; 20 for auau200, 10 for pbpb5020)")] = None,
    run: Annotated[int, typer.Option(help="run number written to every event")] = 1,
    option: Annotated[list[str] | None, typer.Option(help="physics option key=value, "
                                                     "repeatable (e.g. q2_min=25)")] = None,
    sim_option: Annotated[list[str] | None, typer.Option(help="simulation option key=value, "
                                                         "repeatable (e.g. noise=false)")] = None,
) -> None:
    """Generate events with Pythia 8, simulate a detector, write a corpus."""
    if shard_events is None:
        shard_events = default_shard_events(physics) if physics in CONFIGS else 1000
    job = SimulationJob(detector, physics, events, seed=seed, shard_events=shard_events,
                        run=run, physics_options=_options(option or [], "--option"),
                        sim_options=_options(sim_option or [], "--sim-option"))
    with progress_bar() as bar:
        task = bar.add_task(f"{detector} x {physics}", total=events)
        manifest = run_job(job, out, workers=workers, scheduler=scheduler,
                           command=" ".join(["npfm", *sys.argv[1:]]),
                           progress=lambda n: bar.advance(task, n))
    console.print(f"wrote {out}: {manifest['events']} events, {manifest['hits']} hits, "
                  f"{len(manifest['shards'])} shards")


@app.command("validate-physics")
@clean_errors
def validate_physics(
    out: Annotated[Path, typer.Option(help="report directory")] = Path("physics-validation"),
    seed: Annotated[int, typer.Option(help="seed of every sample")] = 1,
    scale: Annotated[float, typer.Option(help="sample size factor (1: about a minute)")] = 1.0,
) -> None:
    """Check generation + simulation against published values; writes a report with plots."""
    with console.status("running physics checks"):
        checks = validation.run(out, seed=seed, scale=scale)
    table = Table(title=f"physics validation ({out / 'report.md'})")
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for c in checks:
        table.add_row(c.name, "[green]PASS[/]" if c.passed else "[red]FAIL[/]", c.detail)
    console.print(table)
    if not all(c.passed for c in checks):
        raise typer.Exit(1)


@app.command()
@clean_errors
def curate(
    recipe: Annotated[Path, typer.Argument(help="recipe YAML, e.g. recipes/phase1.yaml")],
    out: Annotated[Path, typer.Option(help="corpus directory to write (resumes)")],
    scale: Annotated[float, typer.Option(help="multiply every source's size (small test "
                                         "builds)")] = 1.0,
    keep_going: Annotated[bool, typer.Option(help="record unreadable inputs and go on with "
                                             "the other sources")] = False,
) -> None:
    """Curate a corpus from a recipe: quality checks, quarantine, splits, metadata."""
    loaded = load_recipe(recipe, scale=scale)
    sizes = [s.job.n_events if s.job else s.max_events for s in loaded.sources]
    total = None if None in sizes else sum(n for n in sizes if n is not None)
    with progress_bar() as bar:
        task = bar.add_task(f"curating {loaded.name}", total=total)
        report = run_curation(loaded, out, keep_going=keep_going,
                              command=" ".join(["npfm", *sys.argv[1:]]),
                              progress=lambda n: bar.advance(task, n))
    table = Table(title=f"curation of {loaded.name} ({out / 'curation.json'})")
    for col in ("source", "read", "kept", "quarantined", "reasons / errors"):
        table.add_column(col, justify="left" if col in ("source", "reasons / errors")
                         else "right")
    for name, s in report["sources"].items():
        why = ", ".join(f"{k} {v}" for k, v in s["reasons"].items())
        table.add_row(name, str(s["read"]), str(s["kept"]), str(s["quarantined"]),
                      "; ".join([why, *s["errors"]]).strip("; "))
    t = report["totals"]
    table.add_row("total", str(t["read"]), str(t["kept"]), str(t["quarantined"]), "")
    console.print(table)
    validate(out)


@app.command("export")
@clean_errors
def export_corpus(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    to: Annotated[str, typer.Option(help="format: " + ", ".join(export.FORMATS))],
    out: Annotated[Path, typer.Option(help="file to write (never overwritten)")],
) -> None:
    """Export a corpus as FM4NPP npz (TPC hits), EDM4hep ROOT or HepMC3 (truth particles)."""
    with progress_bar() as bar:
        task = bar.add_task(f"exporting {to}", total=Corpus.open(corpus).n_events)
        summary = export.export(corpus, to, out, progress=lambda n: bar.advance(task, n))
    console.print(summary)


for _command in (cli_model.pretrain, cli_model.scaling, cli_model.embed, cli_model.probe):
    app.command()(_command)

app.add_typer(cli_catalog.app, name="catalog")
app.add_typer(cli_portal.app, name="portal")
app.add_typer(cli_lqcd.app, name="lqcd")
app.command("task")(cli_tasks.task)
app.command("report")(cli_tasks.report)
app.add_typer(cli_tasks.study_app, name="study")
app.command("locate")(cli_catalog.locate_command)


def main() -> None:  # pragma: no cover - console entry point
    app()
