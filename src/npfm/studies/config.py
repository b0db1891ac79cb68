"""Study configuration (YAML); corpus and config paths are relative to the file::

    corpora: {sphenix: ../demo/sim/sphenix-pp200, zeus: ../demo/sim/zeus-ep_hera, ...}
    pretraining:
      base: pretrain-tiny.yaml          # a pretraining config; its corpora are replaced
      steps: 150
      runs:                             # name -> corpora (optionally some subsystems)
        tpc: [{corpus: sphenix, subsystems: [TPC]}]
        mixed: [{corpus: sphenix}, {corpus: zeus}]
      cells: [calo]                     # runs pretrained with calorimeter cells too
    tasks: {steps: 150, lr: 3.0e-3, batch_events: 8, head: attention,
            limit: {train: 120, validation: 20, test: 60}}
    data_efficiency: {task: pid, corpus: sphenix, run: mixed, n_train: [10, 30, 100],
                      modes: [frozen, adapter_only, scratch], seeds: [1, 2]}
    transfer: {tasks: {silicon_tracking: sphenix, ep_kinematics: zeus},
               runs: [tpc, tpc_silicon, ep, mixed], seeds: [1]}
    zeus_eic: {run: ep, corpus: epic, tasks: [ep_electron, ep_kinematics],
               modes: [frozen, adapter_only], seeds: [1]}
    baselines: {task: silicon_tracking, corpus: sphenix, finders: [hough, dbscan, gnn],
                run: tpc_silicon, modes: [raw, frozen, adapter_only], seeds: [1]}
                                        # adapters (and the raw-features head) beside them
    probe: {corpus: sphenix, runs: [tpc_silicon, mixed], events: 80}
    pid: {task: pid_track, corpus: sphenix, run: tpc_silicon,
          modes: [raw, frozen, adapter_only], seeds: [1]}  # beside the dE/dx baseline
    calo: {corpus: gun, run: calo, modes: [raw, frozen], seeds: [1],
           bdt_seeds: [0]}              # e/pi beside E/p and a shower-shape BDT
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from npfm.events.errors import NpfmError
from npfm.tasks.backbone import MODES
from npfm.tasks.specs import TASKS
from npfm.train.config import PretrainConfig, load_config

SECTIONS = ("corpora", "pretraining", "tasks", "data_efficiency", "transfer", "zeus_eic",
            "baselines", "probe", "pid", "calo")


@dataclass(frozen=True)
class StudyConfig:
    """A parsed study file: corpora, pretraining runs and the three studies."""

    path: Path
    corpora: dict[str, Path]
    base: PretrainConfig
    runs: dict[str, tuple[dict[str, Any], ...]]  # pretraining corpora entries per run
    tasks: dict[str, Any]
    data_efficiency: dict[str, Any]
    transfer: dict[str, Any]
    zeus_eic: dict[str, Any]
    baselines: dict[str, Any]
    probe: dict[str, Any] = dataclasses.field(default_factory=dict)
    pid: dict[str, Any] = dataclasses.field(default_factory=dict)
    calo: dict[str, Any] = dataclasses.field(default_factory=dict)
    cell_runs: tuple[str, ...] = ()  # runs pretrained with calorimeter cells

    def pretrain_config(self, run: str) -> PretrainConfig:
        """The base config with this run's corpora (and cells for ``cell_runs``)."""
        return dataclasses.replace(self.base, corpora=self.runs[run],
                                   cells=self.base.cells or run in self.cell_runs)


def _need(section: dict[str, Any], key: str, where: str) -> Any:
    if key not in section:
        raise NpfmError(f"{where}.{key}", "missing", "see docs/studies.md for the layout")
    return section[key]


def load_study(path: Path | str) -> StudyConfig:
    """Read and check a study YAML; names the file and key of any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise NpfmError(str(path), f"cannot be read ({exc})".replace("\n", " "),
                        "give a study YAML (see configs/studies-demo.yaml)") from None
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise NpfmError(f"{path} {sorted(unknown)}", "unknown section(s)", f"use {SECTIONS}")
    corpora = {name: (path.parent / p).resolve() for name, p in
               _need(raw, "corpora", str(path)).items()}
    pre = _need(raw, "pretraining", str(path))
    base = load_config(path.parent / _need(pre, "base", f"{path} pretraining"),
                       steps=pre.get("steps"))
    runs: dict[str, tuple[dict[str, Any], ...]] = {}
    for run, entries in _need(pre, "runs", f"{path} pretraining").items():
        items = []
        for entry in entries:
            name = _need(entry, "corpus", f"{path} pretraining.runs.{run}")
            if name not in corpora:
                raise NpfmError(f"{path} pretraining.runs.{run}", f"unknown corpus {name!r}",
                                f"use one of {sorted(corpora)}")
            item: dict[str, Any] = {"path": str(corpora[name]), "name": name}
            if entry.get("subsystems"):
                item["subsystems"] = list(entry["subsystems"])
            items.append(item)
        runs[run] = tuple(items)
    study = StudyConfig(path, corpora, base, runs, raw.get("tasks", {}),
                        raw.get("data_efficiency", {}), raw.get("transfer", {}),
                        raw.get("zeus_eic", {}), raw.get("baselines", {}),
                        raw.get("probe", {}), raw.get("pid", {}), raw.get("calo", {}),
                        tuple(pre.get("cells", ())))
    _check(study)
    return study


def _beside_baseline(section: dict[str, Any], name: str, task: str
                     ) -> list[tuple[str, str, str]]:
    """Names used by a baseline section: its task and corpus, and the run and modes of
    the adapters trained beside it."""
    uses = [("task", section.get("task", task), f"{name}.task"),
            ("corpus", section.get("corpus", ""), f"{name}.corpus")]
    if "run" in section:
        uses.append(("run", section["run"], f"{name}.run"))
    return uses + [("mode", m, f"{name}.modes") for m in section.get("modes", [])]


def _check(study: StudyConfig) -> None:
    """Task, corpus, run and mode names used by the studies must exist."""
    where = str(study.path)
    uses: list[tuple[str, str, str]] = []  # (kind, name, key)
    de, tr, ze = study.data_efficiency, study.transfer, study.zeus_eic
    if de:
        uses += [("task", de.get("task", ""), "data_efficiency.task"),
                 ("corpus", de.get("corpus", ""), "data_efficiency.corpus"),
                 ("run", de.get("run", ""), "data_efficiency.run")]
        uses += [("mode", m, "data_efficiency.modes") for m in de.get("modes", [])]
    if tr:
        for task, corpus in tr.get("tasks", {}).items():
            uses += [("task", task, "transfer.tasks"), ("corpus", corpus, "transfer.tasks")]
        uses += [("run", r, "transfer.runs") for r in tr.get("runs", [])]
    if ze:
        uses += [("run", ze.get("run", ""), "zeus_eic.run"),
                 ("corpus", ze.get("corpus", ""), "zeus_eic.corpus")]
        uses += [("task", t, "zeus_eic.tasks") for t in ze.get("tasks", [])]
        uses += [("mode", m, "zeus_eic.modes") for m in ze.get("modes", [])]
    if study.baselines:
        uses += _beside_baseline(study.baselines, "baselines", "")
    if study.pid and study.pid.get("task", "pid_track") not in ("pid", "pid_track"):
        raise NpfmError(f"{where} pid.task", f"not a PID task: {study.pid['task']!r}",
                        "use pid or pid_track")
    if study.pid:
        uses += _beside_baseline(study.pid, "pid", "pid_track")
    if study.calo:
        uses += _beside_baseline(study.calo, "calo", "calo_eid")
    uses += [("run", r, "pretraining.cells") for r in study.cell_runs]
    if study.probe:
        uses += [("corpus", study.probe.get("corpus", ""), "probe.corpus")]
        uses += [("run", r, "probe.runs") for r in study.probe.get("runs", [])]
    known = {"task": set(TASKS), "corpus": set(study.corpora), "run": set(study.runs),
             "mode": set(MODES)}
    for kind, name, key in uses:
        if name not in known[kind]:
            raise NpfmError(f"{where} {key}", f"unknown {kind} {name!r}",
                            f"use one of {sorted(known[kind])}")
