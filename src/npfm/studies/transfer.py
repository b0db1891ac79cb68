"""Transfer studies: the pretraining-corpus x task matrix (M1, M3) and ZEUS -> EIC (M4).

Every cell is a frozen backbone (one pretraining run) with the same adapter; the matrix
also holds an AdapterOnly row (a random frozen backbone) as the floor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from npfm.studies.runner import StudyRunner, combine
from npfm.tasks.specs import LOWER_IS_BETTER

FLOOR = "adapter_only"


def transfer_matrix(runner: StudyRunner) -> dict[str, Any]:
    """Run every (pretraining run, task); writes ``transfer.json`` and ``transfer.png``."""
    cfg = runner.study.transfer
    seeds = [int(s) for s in cfg.get("seeds", [1])]
    tasks: dict[str, str] = dict(cfg["tasks"])
    runs = list(cfg["runs"])
    matrix: dict[str, dict[str, Any]] = {}
    for task, corpus in tasks.items():
        row: dict[str, Any] = {}
        for run in runs:
            row[run] = combine([runner.cell(task, corpus, run, "frozen", s) for s in seeds])
        row[FLOOR] = combine([runner.cell(task, corpus, runs[0], FLOOR, s) for s in seeds])
        matrix[task] = row
    result = {"tasks": tasks, "runs": runs, "seeds": seeds, "matrix": matrix,
              "pretraining": {r: [dict(c) for c in runner.study.runs[r]] for r in runs},
              "verdict_spec": {"m1": cfg.get("m1", {}), "m3": cfg.get("m3", {})}}
    result["plot"] = str(plot_matrix(result, runner.out / "transfer.png"))
    runner.write("transfer", result)
    return result


def zeus_eic(runner: StudyRunner) -> dict[str, Any]:
    """ZEUS-pretrained frozen backbone against AdapterOnly on EIC-proxy tasks (M4)."""
    cfg = runner.study.zeus_eic
    seeds = [int(s) for s in cfg.get("seeds", [1])]
    rows: dict[str, dict[str, Any]] = {}
    for task in cfg["tasks"]:
        rows[task] = {mode: combine([runner.cell(task, cfg["corpus"], cfg["run"], mode, s)
                                     for s in seeds]) for mode in cfg["modes"]}
    result = {"run": cfg["run"], "corpus": cfg["corpus"], "seeds": seeds, "tasks": rows}
    runner.write("zeus_eic", result)
    return result


def plot_matrix(result: dict[str, Any], png: Path) -> Path:
    """Each task's headline metric per pretraining run, relative to the AdapterOnly floor
    (positive = better than the floor, whatever the metric's direction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["matrix"])
    runs = [*result["runs"], FLOOR]
    gain = np.full((len(tasks), len(runs)), np.nan)
    for i, task in enumerate(tasks):
        row = result["matrix"][task]
        sign = -1.0 if row[runs[0]]["metric"] in LOWER_IS_BETTER else 1.0
        for j, run in enumerate(runs):
            gain[i, j] = sign * (row[run]["value"] - row[FLOOR]["value"])
    fig, ax = plt.subplots(figsize=(2.2 * len(runs) + 7, 1.3 * len(tasks) + 4), dpi=80)
    bound = np.nanmax(np.abs(gain)) or 1.0
    image = ax.imshow(gain, cmap="RdBu", vmin=-bound, vmax=bound)
    for i, task in enumerate(tasks):
        for j, run in enumerate(runs):
            cell = result["matrix"][task][run]
            ax.text(j, i, f"{cell['value']:.3f}", ha="center", va="center", fontsize=16)
    ax.set_xticks(range(len(runs)), runs, rotation=30, ha="right", fontsize=16)
    ax.set_yticks(range(len(tasks)),
                  [f"{t} ({result['matrix'][t][runs[0]]['metric']})" for t in tasks],
                  fontsize=16)
    ax.minorticks_off()
    ax.set_title("frozen backbone by pretraining run; colour: gain over AdapterOnly",
                 fontsize=16)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png
