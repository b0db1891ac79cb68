"""Lattice QCD commands: ``npfm lqcd generate|measure|thermal|convert|import|inspect``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from npfm.cli_common import clean_errors, console, progress_bar
from npfm.events.errors import NpfmError
from npfm.lqcd import ildg, observables
from npfm.lqcd.actions import describe, import_ensemble, quark_action
from npfm.lqcd.ensemble import GenerateSpec, generate, lattice_from_text
from npfm.lqcd.export import export_configs
from npfm.lqcd.lime import read_records
from npfm.lqcd.measure import MeasureSpec, measure
from npfm.lqcd.metadata import ENSEMBLE_FILE, load_ensemble
from npfm.lqcd.thermal import measure_thermal

app = typer.Typer(help="Lattice QCD: ILDG gauge configurations, generation, correlators.",
                  no_args_is_help=True)
Out = Annotated[Path, typer.Option("--out", help="output directory or file")]


@app.command("generate")
@clean_errors
def generate_cmd(
    out: Out,
    lattice: Annotated[str, typer.Option(help="LXxLYxLZxLT, or L for L^4")] = "4",
    beta: Annotated[float, typer.Option(help="Wilson gauge coupling beta = 6/g^2")] = 6.0,
    configs: Annotated[int, typer.Option(help="configurations to save")] = 10,
    therm: Annotated[int, typer.Option(help="thermalisation sweeps, not saved")] = 50,
    separation: Annotated[int, typer.Option(help="sweeps between saved configs")] = 5,
    over_relaxation: Annotated[int, typer.Option(help="over-relaxation steps per sweep")] = 4,
    seed: Annotated[int, typer.Option(help="random seed (torch.Generator)")] = 1,
    start: Annotated[str, typer.Option(help="cold (unit links) or hot (random)")] = "cold",
    precision: Annotated[int, typer.Option(help="ILDG file precision, 32 or 64 bit")] = 64,
) -> None:
    """Quenched SU(3) ensemble (heat-bath + over-relaxation) as ILDG files + ensemble.json."""
    spec = GenerateSpec(lattice=lattice_from_text(lattice), beta=beta, configs=configs,
                        therm=therm, separation=separation, over_relaxation=over_relaxation,
                        seed=seed, start=start, precision=precision)
    spec.check()
    with progress_bar("sweeps") as bar:
        task = bar.add_task("sweeps", total=therm + configs * separation)
        record = generate(out, spec, command=" ".join(["npfm", *sys.argv[1:]]),
                          progress=lambda n: bar.advance(task, n))
    plaq = record["observables"]["plaquette"]
    err = f" +- {plaq['error']:.6f}, tau_int {plaq['tau_int']:.2f} sweeps" if "error" in plaq \
        else ""
    drift = record["thermalisation"].get("drift_sigma")
    console.print(f"[green]OK[/] {out}: {len(record['configurations'])} configurations, "
                  f"<plaquette> {plaq['mean']:.6f}{err}"
                  + (f", first/second-half drift {drift:+.1f} sigma" if drift is not None
                     else ""))


@app.command("measure")
@clean_errors
def measure_cmd(
    ensemble: Annotated[Path, typer.Argument(help="ensemble directory (npfm lqcd generate)")],
    out: Out,
    mass: Annotated[float, typer.Option(help="bare valence quark mass m0 (lattice units)")] = 0.2,
    csw: Annotated[float, typer.Option(help="clover coefficient c_sw (0: Wilson)")] = 0.0,
    source: Annotated[str, typer.Option(help="point or wall")] = "point",
    tol: Annotated[float, typer.Option(help="CG relative residual")] = 1e-10,
    gauge: Annotated[str, typer.Option(
        help="auto (coulomb for wall sources), none, coulomb or landau")] = "auto",
    gauge_tol: Annotated[float, typer.Option(help="gauge fixing stops at theta below")
                         ] = 1e-12,
    t_sink: Annotated[int, typer.Option(
        help="nucleon source-sink separation for 3-point functions (0: no nucleon)")] = 0,
    momenta: Annotated[int, typer.Option(help="non-zero nucleon momenta, 0-3")] = 1,
) -> None:
    """Plaquette, Wilson and Polyakov loops, pion and rho correlators, effective masses;
    with --t-sink the nucleon mass and isovector vector/axial charges."""
    spec = MeasureSpec(mass=mass, csw=csw, source=source, tol=tol, gauge=gauge,
                       gauge_tol=gauge_tol, t_sink=t_sink, momenta=momenta)
    spec.check()
    n_configs = len(load_ensemble(ensemble)["configurations"])
    with progress_bar("solves") as bar:
        task = bar.add_task("solves", total=spec.solves_per_config * n_configs)
        result = measure(ensemble, out, spec, progress=lambda n: bar.advance(task, n))
    pion = result["summary"]["pion"]["effective_mass"]
    console.print(f"[green]OK[/] {out}: {n_configs} configurations; pion effective mass "
                  f"{', '.join('-' if m is None else f'{m:.3f}' for m in pion[:6])} ...")
    nucleon = result["summary"].get("nucleon")
    if nucleon is not None:
        console.print(_nucleon_line(nucleon))


def _nucleon_line(nucleon: dict[str, Any]) -> str:
    """One line: nucleon mass fit and the plateau values of the charges."""
    fit = nucleon["mass_fit"]
    parts = ["nucleon: a m_N " + (f"{fit['mass']:.4f} +- {fit['error']:.4f} (t {fit['t_min']}"
                                  f"-{fit['t_max']})" if fit else "no fit (too few configs)")]
    for name, entry in nucleon["ratios"].items():
        plateau = entry["plateau"]
        if plateau is not None:
            parts.append(f"{name} {plateau['value']:.4f} +- {plateau['error']:.4f}")
    return "; ".join(parts)


@app.command("convert")
@clean_errors
def convert_cmd(
    source: Annotated[Path, typer.Argument(help="ensemble directory or ILDG/LIME file")],
    out: Out,
    precision: Annotated[int, typer.Option(help="precision of an ILDG output, 32/64")] = 64,
) -> None:
    """ILDG -> HDF5 + Croissant (OUT ending .h5), or ILDG -> ILDG at another precision."""
    if source.is_dir():
        record = load_ensemble(source)
        files = [source / c["file"] for c in record["configurations"]]
        trajectories = [c["trajectory"] for c in record["configurations"]]
        attrs = {"ensemble": record["name"],
                 "beta": record["physics"]["action"]["gluon"]["beta"]}
    else:
        files, trajectories, attrs = [source], [0], {"source": source.name}
    if out.suffix == ".h5":
        with progress_bar("configs") as bar:
            bar.add_task("exporting", total=None)
            export_configs(files, out, attrs, trajectories)
        console.print(f"[green]OK[/] {out} ({len(files)} configurations) and "
                      f"{out.with_suffix('.croissant.json')}")
    elif len(files) == 1:
        config = ildg.read_config(files[0])
        ildg.write_config(out, config.u, precision=precision, lfn=config.lfn,
                          file_xml=config.file_xml, record_xml=config.record_xml)
        console.print(f"[green]OK[/] {out} ({precision}-bit ILDG)")
    else:
        raise NpfmError(str(out), "an ensemble converts only to HDF5",
                        "name the output FILE.h5, or convert one .lime file at a time")


def _pairs(items: list[str], what: str) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise NpfmError(f"{what} {item!r}", "not NAME=NUMBER", f"write e.g. --{what} csw=1.9")
    return out


@app.command("import")
@clean_errors
def import_cmd(
    directory: Annotated[Path, typer.Argument(help="directory holding the ILDG .lime files")],
    action: Annotated[str, typer.Option(help="quark action: clover, hisq or domain-wall")],
    beta: Annotated[float, typer.Option(help="gauge coupling beta")],
    flavours: Annotated[str, typer.Option(help="sea flavour content, e.g. 2+1+1")],
    mass: Annotated[list[str], typer.Option(help="per flavour group, e.g. l=0.0102")],
    param: Annotated[list[str], typer.Option(help="action parameter, e.g. csw=1.9")],
    gluon: Annotated[str, typer.Option(help="gauge action name")] = "Wilson plaquette",
    mass_convention: Annotated[str, typer.Option(help="kappa or am0 (clover), am")] = "",
) -> None:
    """Record ILDG files produced elsewhere (clover, HISQ, domain-wall) in ensemble.json."""
    quark = quark_action(action, flavours, _pairs(mass, "mass"), _pairs(param, "param"),
                         mass_convention or None)
    record = import_ensemble(directory, quark, beta, gluon,
                             command=" ".join(["npfm", *sys.argv[1:]]))
    info = describe(record)
    console.print(f"[green]OK[/] {directory / ENSEMBLE_FILE}: {info['title']}; "
                  f"{info['configurations']} configurations")


@app.command("thermal")
@clean_errors
def thermal_cmd(
    hot: Annotated[Path, typer.Argument(help="finite-temperature ensemble (Nt << Ns)")],
    reference: Annotated[Path, typer.Argument(help="ensemble with a multiple of Nt slices")],
    out: Out,
    mass: Annotated[float, typer.Option(help="heavy bare quark mass m0 (lattice units)")
                    ] = 0.4,
    tol: Annotated[float, typer.Option(help="CG relative residual")] = 1e-10,
) -> None:
    """Temporal and spatial heavy-quark meson correlators, G/G_rec, Polyakov susceptibility."""
    with progress_bar("configs") as bar:
        bar.add_task("thermal correlators", total=None)
        result = measure_thermal(hot, reference, out, mass, tol)
    ratio = result["correlators"]["pseudoscalar"]["ratio_to_reconstructed"]
    poly = result["polyakov_loop"]
    console.print(f"[green]OK[/] {out / 'thermal.json'}: pseudoscalar G/G_rec "
                  f"{', '.join(f'{r:.4f}' for r in ratio)}; chi_P {poly['susceptibility']:.4g}"
                  f" +- {poly['susceptibility_error']:.2g}")


@app.command("inspect")
@clean_errors
def inspect_cmd(
    path: Annotated[Path, typer.Argument(help="ILDG/LIME file or ensemble directory")],
) -> None:
    """List LIME records, verify the checksum and print plaquette and Polyakov loop."""
    if path.is_dir() and (path / ENSEMBLE_FILE).is_file():
        record = load_ensemble(path)
        size = record["physics"]["size"]
        plaq = record["observables"]["plaquette"]
        console.print(f"{record['name']}: {size['lx']}x{size['ly']}x{size['lz']}x{size['lt']}, "
                      f"beta {record['physics']['action']['gluon']['beta']}, "
                      f"{len(record['configurations'])} configurations, <plaquette> "
                      f"{plaq['mean']:.6f}" + (f" +- {plaq['error']:.6f} (tau_int "
                                               f"{plaq['tau_int']:.2f})" if "error" in plaq
                                               else ""))
        return
    if not path.is_file():
        raise NpfmError(str(path), "not found", "pass an ILDG/LIME file or ensemble directory")
    table = Table("#", "type", "bytes", "MB", "ME")
    for rec in read_records(path):
        table.add_row(str(rec.index), rec.type, str(rec.length), "x" if rec.mb else "",
                      "x" if rec.me else "")
    console.print(table)
    config = ildg.read_config(path)
    poly = observables.polyakov_loop(config.u)
    lx, ly, lz, lt = config.lattice
    console.print(f"lattice {lx}x{ly}x{lz}x{lt}, {config.precision}-bit, lfn {config.lfn or '-'}; "
                  f"checksum {'verified' if config.checksum_verified else 'absent'} "
                  f"(suma {config.suma:x}, sumb {config.sumb:x}); plaquette "
                  f"{observables.plaquette(config.u):.6f}; Polyakov loop "
                  f"{poly.real:+.5f}{poly.imag:+.5f}i")
