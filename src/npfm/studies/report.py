"""``npfm report``: one self-contained HTML page from a studies directory.

It reads what the studies wrote (``probe.json``, ``data_efficiency.json``,
``transfer.json``, ``zeus_eic.json``, ``cells.jsonl``, and ``baselines.json``,
``pid.json`` and ``calo.json`` when present), computes the
M1-M4 verdicts, embeds the plots as data URIs, and lists the provenance of every number:
corpus (manifest sha256), checkpoint (weights sha256), training settings and seed.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from npfm.events.errors import NpfmError
from npfm.events.shards import atomic_write_bytes, atomic_write_json
from npfm.studies.efficiency import plot_curves
from npfm.studies.transfer import plot_matrix
from npfm.studies.verdicts import GO, NO_GO, verdicts

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;
padding:3px 7px;text-align:right}th{background:#f2f2f2}td.l,th.l{text-align:left}
.GO{color:#11772d;font-weight:bold}.NO-GO{color:#b3261e;font-weight:bold}
code{font-size:12px}img{max-width:100%}"""


def _read(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except ValueError as exc:
        raise NpfmError(str(path), f"not valid JSON ({exc})", "re-run the study") from None


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "&ndash;"
    return f"{x:.{digits}f}" if isinstance(x, float) else html.escape(str(x))


def _ci(cell: dict[str, Any]) -> str:
    return f"{_num(cell['value'])} [{_num(cell['lo'])}, {_num(cell['hi'])}]"


def _img(path: Path) -> str:
    if not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned."""
    th = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _verdict_section(v: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, item in v.items():
        detail = item.get("why") or item.get("rule", "")
        if name == "M2" and "factor" in item:
            detail += f"; measured factor {_num(item['factor'], 2)} ({item['bound']})"
        for comp in item.get("comparisons", []) if isinstance(item.get("comparisons"),
                                                              list) else []:
            detail += (f"<br>{comp['task']}: {comp['a']} {_num(comp['a_value'])} "
                       f"[{_num(comp['a_interval'][0])}, {_num(comp['a_interval'][1])}] vs "
                       f"{comp['b']} {_num(comp['b_value'])} ({comp['metric']}): "
                       f"{'beats' if comp['beats'] else 'does not beat'}")
        if isinstance(item.get("comparisons"), dict):
            for group, comps in item["comparisons"].items():
                for comp in comps:
                    detail += (f"<br>{group} {comp['task']}: {comp['a']} "
                               f"{_num(comp['a_value'])} vs {comp['b']} "
                               f"{_num(comp['b_value'])}: "
                               f"{'beats' if comp['beats'] else 'does not beat'}")
        rows.append([name, f'<span class="{item["verdict"]}">{item["verdict"]}</span>',
                     detail])
    return "<h2>Go/no-go verdicts</h2>" + _table(["metric", "verdict", "evidence"], rows, 3)


def _efficiency_section(eff: dict[str, Any], out: Path) -> str:
    rows = [[mode, str(p["n_train"]), _ci(p), ",".join(map(str, p["seeds"]))]
            for mode, points in eff["curves"].items() for p in points]
    return (f"<h2>Data efficiency (M2): {eff['task']} on {eff['corpus']}, run {eff['run']}"
            f"</h2>{_img(out / 'data_efficiency.png')}"
            + _table(["mode", "training events", f"{eff['metric']} [95% CI]", "seeds"], rows))


def _transfer_section(tr: dict[str, Any], out: Path) -> str:
    runs = [*tr["runs"], "adapter_only"]
    rows = [[f"{t} ({tr['tasks'][t]}, {row[runs[0]]['metric']})", *[_ci(row[r]) for r in runs]]
            for t, row in tr["matrix"].items()]
    return (f"<h2>Transfer matrix (M1, M3), seeds {tr['seeds']}</h2>"
            f"{_img(out / 'transfer.png')}" + _table(["task", *runs], rows))


def _zeus_section(z: dict[str, Any]) -> str:
    rows = [[f"{task} ({cells[next(iter(cells))]['metric']})",
             *[f"{m}: {_ci(c)}" for m, c in cells.items()]] for task, cells in z["tasks"].items()]
    return (f"<h2>ZEUS &rarr; EIC transfer (M4): run {z['run']} on {z['corpus']}, seeds "
            f"{z['seeds']}</h2>" + _table(["task", "modes"], rows))


_PROBE_TARGETS = {"eta": "&eta;", "cos_phi": "cos &phi;", "sin_phi": "sin &phi;", "r_cm": "r",
                  "z_cm": "z", "log10_pt": "p log p<sub>T</sub>", "particle_eta": "p &eta;"}


def _probe_section(probe: dict[str, Any]) -> str:
    """Per run: linear-probe R^2 and same-track k-NN purity of each representation, and the
    pretraining loss against its trivial predictors."""
    parts = ["<h2>Representation probe</h2><p>Frozen features of each pretraining run "
             "(token embedding, each block, their mean &ldquo;mix&rdquo;) next to the "
             "standardised raw hit features and a randomly initialised embedder: R&sup2; of "
             "ridge probes fitted on half of the test events and scored on the other half "
             "(p: the hit's truth particle), and same-track k-NN purity with a 95% bootstrap "
             "interval over events (<code>npfm probe</code>).</p>"]
    for run, r in probe["runs"].items():
        rows = [[rep, *(_num(r2.get(t), 2) for t in _PROBE_TARGETS),
                 _ci(r["knn_purity"][rep])] for rep, r2 in r["linear_probe"].items()]
        loss = r["pretraining_loss"]
        losses = ", ".join(f"{html.escape(k)} {_num(v, 4)}" for k, v in loss.items()
                           if k.endswith("loss"))
        parts.append(f"<h3>run {html.escape(run)}: {r['n_events']} {r['split']} events of "
                     f"{html.escape(probe['corpus'])}, {r['n_hits']} hits</h3>"
                     + _table(["features", *_PROBE_TARGETS.values(),
                               f"{r['k']}-NN purity [95% CI]"], rows)
                     + f"<p>Pretraining objective on these events: {losses}.</p>")
    return "".join(parts)


_HEADS = {"silicon_ari": "silicon ARI", "ari": "ARI", "efficiency": "DM efficiency",
          "purity": "purity", "trackml": "TrackML"}


def _baselines_section(b: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    keys: tuple[str, ...] = ("ari", "efficiency", "purity", "trackml")
    if all("silicon_ari" in r for r in b["finders"].values()):
        keys = ("silicon_ari", *keys)  # the silicon task's headline first
    rows = [[f"{name} (baseline)", *(_ci(r[k]) for k in keys),
             _num(r["seconds_per_event"] * 1e3, 1)] for name, r in b["finders"].items()]
    for c in cells:
        if c["task"] == b["task"] and c["corpus_name"] == b["corpus"] and c["n_train"] == \
                b["n_train"]:
            s = c["scores"]
            name = ("raw hit features, same head (no backbone)" if c["mode"] == "raw"
                    else f"{c['mode']} adapter, run {c['run_name']}")
            rows.append([f"{name}, seed {c['seed']}",
                         *(_ci(s[k]) for k in keys),
                         _num(1e3 / c["test_events_per_second"], 1)])
    return (f"<h2>Tracking: adapters against classical and learned baselines</h2>"
            f"<p>{html.escape(b['description'])} Times are CPU wall time per test event "
            "(adapters: backbone and head).</p>"
            + _table(["method", *(_HEADS[k] for k in keys), "ms/event"], rows))


def _pid_section(p: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    keys = ("macro_recall", "macro_f1", "accuracy")
    rows = [["dE/dx + fitted momentum, boosted trees (baseline)",
             *(_ci(p["baseline"][k]) for k in keys)]]
    for c in cells:
        if c["task"] == p["task"] and c["corpus_name"] == p["corpus"] and c["n_train"] == \
                p["n_train"]:
            name = ("raw hit features, same head (no backbone)" if c["mode"] == "raw"
                    else f"{c['mode']} adapter, run {c['run_name']}")
            rows.append([f"{name}, seed {c['seed']}", *(_ci(c["scores"][k]) for k in keys)])
    return (f"<h2>Particle identification: adapters against dE/dx</h2>"
            f"<p>{html.escape(p['description'])} Five classes (other, π, K, p, e); chance "
            "macro recall is 0.2.</p>"
            + _table(["method", "macro recall", "macro F1", "accuracy"], rows))


def _rejection(scores: dict[str, Any]) -> str:
    """The rejection with its interval, or a lower bound where no pion passes the cut."""
    if scores.get("passing_at_90") == 0:
        return f"&ge; {_num(scores['rejection_at_90']['value'], 0)} (no test pion passes)"
    return _ci(scores["rejection_at_90"])


def _calo_section(c: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    keys = ("auc", "accuracy")
    rows = [[f"{name} (baseline)", _rejection(r), *(_ci(r[k]) for k in keys)]
            for name, r in c["baselines"].items()]
    for cell in cells:
        if cell["task"] == c["task"] and cell["corpus_name"] == c["corpus"] \
                and cell["n_train"] == c["n_train"]:
            name = ("raw hit and cell features, same head (no backbone)"
                    if cell["mode"] == "raw" else f"{cell['mode']} adapter, run "
                    f"{cell['run_name']}")
            rows.append([f"{name}, seed {cell['seed']}", _rejection(cell["scores"]),
                         *(_ci(cell["scores"][k]) for k in keys)])
    return ("<h2>Calorimeter: electron/pion separation against E/p and shower shapes</h2>"
            f"<p>{html.escape(c['description'])}</p>"
            + _table(["method", "pion rejection at 90% e eff.", "ROC AUC", "accuracy"], rows))


def _cells_section(cells: list[dict[str, Any]]) -> str:
    rows = []
    for c in cells:
        head = c["scores"][c["headline"]]
        value = _ci(head) if isinstance(head, dict) else _num(head)
        p = c["provenance"]
        rows.append([c["task"], c["corpus_name"], c["run_name"], c["mode"], str(c["seed"]),
                     str(c["n_train"]), f"{c['headline']} {value}",
                     f"<code>{p['corpus_manifest_sha256'][:12]}</code>",
                     f"<code>{(p['checkpoint_sha256'] or '')[:12]}</code>",
                     f"{c['steps']} steps, lr {c['lr']}, {c['head']} head"])
    return ("<h2>Provenance of every number</h2><p>Each row is one trained adapter: the "
            "corpus manifest and checkpoint weights by sha256 (full values in "
            "cells.jsonl), training settings and seed.</p>"
            + _table(["task", "corpus", "run", "mode", "seed", "train events",
                      "headline [95% CI]", "corpus sha256", "checkpoint sha256", "settings"],
                     rows))


def _finite(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def results_document(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Every cell's headline as a catalog results document (``npfm catalog register``)."""
    results = []
    for c in cells:
        score = c["scores"][c["headline"]]
        value = score if isinstance(score, dict) else {"value": score, "lo": None, "hi": None}
        p = c["provenance"]
        results.append({
            "name": c["key"], "task": c["task"], "metric": c["headline"],
            "value": _finite(value["value"]), "lo": _finite(value["lo"]),
            "hi": _finite(value["hi"]), "seeds": [c["seed"]],
            "checkpoint_sha256": p["checkpoint_sha256"] if p["pretrained"] else None,
            "dataset_manifest_sha256": p["corpus_manifest_sha256"],
            "config": {"mode": c["mode"], "head": c["head"], "steps": c["steps"],
                       "lr": c["lr"], "n_train": c["n_train"], "run": p["run"]}})
    return {"results": results}


def render_report(studies: Path, out: Path, transfer_spec: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """Write the HTML report ``out``, and ``verdicts.json`` and ``results.json`` (for the
    catalog) beside the studies."""
    eff = _read(studies / "data_efficiency.json")
    tr = _read(studies / "transfer.json")
    z = _read(studies / "zeus_eic.json")
    base = _read(studies / "baselines.json")
    probe = _read(studies / "probe.json")
    pid = _read(studies / "pid.json")
    calo = _read(studies / "calo.json")
    log = studies / "cells.jsonl"
    if all(x is None for x in (eff, tr, z, base, probe, pid, calo)):
        raise NpfmError(str(studies), "holds no study results",
                        "run `npfm study all CONFIG --out DIR` first")
    cells = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] \
        if log.exists() else []
    if eff:  # drawn again from the JSON, so plot and numbers always agree
        plot_curves(eff, studies / "data_efficiency.png")
    if tr:
        plot_matrix(tr, studies / "transfer.png")
    spec = transfer_spec if transfer_spec is not None else (tr or {}).get("verdict_spec", {})
    v = verdicts(eff, tr, z, spec)
    parts = [f"<h1>npfm downstream studies</h1><p>Results directory: "
             f"<code>{html.escape(str(studies))}</code>; {len(cells)} trained adapters. "
             "Intervals are 95% event-bootstrap intervals; over several seeds, the envelope "
             "of the seeds' intervals.</p>", _verdict_section(v)]
    if probe:
        parts.append(_probe_section(probe))
    if eff:
        parts.append(_efficiency_section(eff, studies))
    if tr:
        parts.append(_transfer_section(tr, studies))
    if z:
        parts.append(_zeus_section(z))
    if base:
        parts.append(_baselines_section(base, cells))
    if pid:
        parts.append(_pid_section(pid, cells))
    if calo:
        parts.append(_calo_section(calo, cells))
    parts.append(_cells_section(cells))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>npfm report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    atomic_write_bytes(out, page.encode())
    atomic_write_json(studies / "verdicts.json", v)
    atomic_write_json(studies / "results.json", results_document(cells))
    return {"verdicts": {k: x["verdict"] for k, x in v.items()}, "cells": len(cells),
            "go": sum(x["verdict"] == GO for x in v.values()),
            "no_go": sum(x["verdict"] == NO_GO for x in v.values())}
