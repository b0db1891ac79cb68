"""Go/no-go verdicts M1-M4, computed from the studies' results.

"A beats B" means A's 95% interval lies wholly on the better side of B's value
(``npfm.studies.runner.better``): a difference the event sample cannot explain.

- M1: the mixed-domain run beats the single-domain run on at least one silicon-tracker
  task and at least one cross-facility task (``transfer.m1`` names them).
- M2: the label-reduction factor of the data-efficiency study is at least 4.
- M3: a run with MVTX and LEP/ZEUS data (``transfer.m3.extended``) beats the TPC-only
  run on a task of ``transfer.m3.tasks``.
- M4: the ZEUS-pretrained frozen backbone beats AdapterOnly on an EIC-proxy task.
"""

from __future__ import annotations

from typing import Any

from npfm.studies.runner import better

GO, NO_GO, UNDECIDED = "GO", "NO-GO", "NOT RUN"


def _compare(matrix: dict[str, Any], task: str, a: str, b: str) -> dict[str, Any]:
    row = matrix[task]
    metric = row[a]["metric"]
    return {"task": task, "metric": metric, "a": a, "b": b, "a_value": row[a]["value"],
            "a_interval": [row[a]["lo"], row[a]["hi"]], "b_value": row[b]["value"],
            "beats": better(row[a], row[b], metric)}


def m1(transfer: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any]:
    if not transfer or not spec:
        return {"verdict": UNDECIDED, "why": "no transfer study with an m1 section"}
    mixed, matrix = spec["mixed"], transfer["matrix"]
    groups = {g: [_compare(matrix, t, mixed, single) for t, single in spec[g].items()
                  if t in matrix] for g in ("silicon", "cross_facility")}
    ok = all(any(c["beats"] for c in groups[g]) for g in groups)
    return {"verdict": GO if ok else NO_GO, "comparisons": groups,
            "rule": "mixed beats single-domain on >= 1 silicon and >= 1 cross-facility task"}


def m2(efficiency: dict[str, Any] | None) -> dict[str, Any]:
    if not efficiency or "m2" not in efficiency:
        return {"verdict": UNDECIDED, "why": "no data-efficiency study with frozen and scratch"}
    factor = efficiency["m2"]["factor"]
    ok = factor is not None and factor >= 4
    return {"verdict": GO if ok else NO_GO, "factor": factor,
            "bound": efficiency["m2"]["bound"], "rule": "label-reduction factor >= 4",
            "largest_size": efficiency["sizes"][-1]}


def m3(transfer: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any]:
    if not transfer or not spec:
        return {"verdict": UNDECIDED, "why": "no transfer study with an m3 section"}
    matrix = transfer["matrix"]
    comparisons = [_compare(matrix, t, run, spec["baseline"]) for t in spec["tasks"]
                   if t in matrix for run in spec["extended"]]
    ok = any(c["beats"] for c in comparisons)
    return {"verdict": GO if ok else NO_GO, "comparisons": comparisons,
            "rule": "an extended pretraining corpus beats TPC-only on a listed task"}


def m4(zeus_eic: dict[str, Any] | None) -> dict[str, Any]:
    if not zeus_eic:
        return {"verdict": UNDECIDED, "why": "no ZEUS -> EIC study"}
    comparisons = [_compare(zeus_eic["tasks"], t, "frozen", "adapter_only")
                   for t in zeus_eic["tasks"]]
    ok = any(c["beats"] for c in comparisons)
    return {"verdict": GO if ok else NO_GO, "comparisons": comparisons,
            "rule": "ZEUS-pretrained frozen beats AdapterOnly on >= 1 EIC-proxy task"}


def verdicts(efficiency: dict[str, Any] | None, transfer: dict[str, Any] | None,
             zeus_eic: dict[str, Any] | None, transfer_spec: dict[str, Any]
             ) -> dict[str, dict[str, Any]]:
    """All four verdicts from the study payloads (any may be missing)."""
    return {"M1": m1(transfer, transfer_spec.get("m1", {})), "M2": m2(efficiency),
            "M3": m3(transfer, transfer_spec.get("m3", {})), "M4": m4(zeus_eic)}
