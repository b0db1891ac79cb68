"""The representation probe of the studies' pretraining runs (``npfm.tasks.probe``).

``probe_runs(runner)`` probes each run named in the study's ``probe`` section on the
``events`` test events of its ``corpus`` and writes ``probe.json`` (run name -> the
probe's figures), which the report shows before any downstream number.
"""

from __future__ import annotations

from typing import Any

from npfm.studies.runner import StudyRunner
from npfm.tasks.probe import probe


def probe_runs(runner: StudyRunner) -> dict[str, Any]:
    """Probe every configured run (pretraining it first if needed); writes probe.json."""
    cfg = runner.study.probe
    corpus = runner.study.corpora[cfg["corpus"]]
    results: dict[str, Any] = {}
    for run in cfg.get("runs", list(runner.study.runs)):
        runner.progress(f"probe of run {run} on {cfg['corpus']}")
        results[run] = probe(runner.run_dir(run), corpus, split=str(cfg.get("split", "test")),
                             n_events=int(cfg.get("events", 80)))
    payload = {"corpus": cfg["corpus"], "runs": results}
    runner.write("probe", payload)
    return payload
