"""Data-efficiency study (go/no-go metric M2): quality against labelled events.

For each training-set size and mode (foundation model + adapter, AdapterOnly, from
scratch) the task is trained with every seed. The label-reduction factor is the
largest size divided by the (log-interpolated) size at which the pretrained curve first
reaches the from-scratch quality at that largest size. When from scratch at the largest
size does not beat itself at the smallest (``runner.better``: e.g. every mode predicts the
majority class), no reduction can be measured and M2 is not met.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from npfm.studies.runner import StudyRunner, better, combine
from npfm.tasks.specs import LOWER_IS_BETTER

FM_MODE, SCRATCH = "frozen", "scratch"


def reduction_factor(sizes: list[int], fm: list[float], target: float, lower: bool
                     ) -> dict[str, Any]:
    """Labels saved by ``fm`` (values per size) to reach ``target``; a lower bound when
    the smallest size already reaches it, None when no size does."""
    sign = -1.0 if lower else 1.0
    reached = [sign * v >= sign * target for v in fm]
    if not any(reached):
        return {"factor": None, "bound": "not reached"}
    first = reached.index(True)
    if first == 0:
        return {"factor": sizes[-1] / sizes[0], "bound": "lower"}
    lo, hi = sizes[first - 1], sizes[first]
    v0, v1 = fm[first - 1], fm[first]
    t = (target - v0) / (v1 - v0) if v1 != v0 else 1.0
    needed = float(np.exp(np.log(lo) + t * (np.log(hi) - np.log(lo))))
    return {"factor": sizes[-1] / needed, "bound": "interpolated", "needed": needed}


def data_efficiency(runner: StudyRunner) -> dict[str, Any]:
    """Run the study; writes ``data_efficiency.json`` and ``.png``; returns the payload."""
    cfg = runner.study.data_efficiency
    task, corpus, run = cfg["task"], cfg["corpus"], cfg["run"]
    available = len(runner.events(task, corpus)["train"])
    sizes = sorted({min(int(n), available) for n in cfg["n_train"]})
    modes, seeds = list(cfg["modes"]), [int(s) for s in cfg["seeds"]]
    curves: dict[str, list[dict[str, Any]]] = {}
    for mode in modes:
        curves[mode] = [combine([runner.cell(task, corpus, run, mode, s, n) for s in seeds])
                        | {"n_train": n} for n in sizes]
    metric = curves[modes[0]][0]["metric"]
    lower = metric in LOWER_IS_BETTER
    result: dict[str, Any] = {"task": task, "corpus": corpus, "run": run, "sizes": sizes,
                              "seeds": seeds, "metric": metric, "curves": curves,
                              "available_train_events": available}
    if FM_MODE in curves and SCRATCH in curves:
        target = curves[SCRATCH][-1]["value"]
        if len(sizes) < 2 or not better(curves[SCRATCH][-1], curves[SCRATCH][0], metric):
            # more labels do not measurably help the reference: nothing to reduce
            result["m2"] = {"factor": None, "target": target,
                            "bound": "not measurable: from scratch does not improve with labels"}
        else:
            result["m2"] = reduction_factor(sizes, [p["value"] for p in curves[FM_MODE]],
                                            target, lower) | {"target": target}
    result["plot"] = str(plot_curves(result, runner.out / "data_efficiency.png"))
    runner.write("data_efficiency", result)
    return result


def plot_curves(result: dict[str, Any], png: Path) -> Path:
    """Headline metric against training events, one band per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)
    fig, ax = plt.subplots(figsize=(10, 7), dpi=80)
    for mode, points in result["curves"].items():
        n = [p["n_train"] for p in points]
        ax.plot(n, [p["value"] for p in points], marker="o", label=mode)
        ax.fill_between(n, [p["lo"] for p in points], [p["hi"] for p in points], alpha=0.2)
    ax.set(xscale="log", xlabel="labelled training events", ylabel=result["metric"])
    ax.set_xticks(result["sizes"], [str(n) for n in result["sizes"]])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_title(f"{result['task']} on {result['corpus']}, seeds {result['seeds']}",
                 fontsize=18)
    ax.legend(frameon=False, fontsize=18)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png
