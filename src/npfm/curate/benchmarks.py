"""Benchmark definitions: versioned YAML files (``benchmarks/*.yaml``) naming, per data
family, the corpus selection, splits, label sets and metrics that downstream tasks use.

A definition is checked against the event model: subsystems and splits must be in the
vocabularies, labels must be event-model columns (or a documented derived quantity), and
metrics must be among ``METRICS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from npfm.events import vocabulary
from npfm.events.errors import NpfmError
from npfm.events.schema import BY_NAME

#: Metric name -> definition (shared/reference facts: FM4NPP, acorn/gnn_tracking, TrackML).
METRICS = {
    "ari_event_mean": "adjusted Rand index per event, averaged over events (noise hits as "
                      "their own cluster)",
    "ari_pooled": "adjusted Rand index of all hits pooled, event-qualified labels",
    "double_majority_efficiency": "found truth tracks (>= 3 hits) / all; found: a predicted "
                                  "track (>= 4 hits) holds > 50% of its hits, > 50% of them "
                                  "its own",
    "purity": "fraction of a matched predicted track's hits from its truth track, averaged",
    "fake_rate": "1 - matched predicted tracks / predicted tracks above the minimum length",
    "duplicate_rate": "extra matches / found truth tracks",
    "trackml_score": "TrackML score as trackml-library (per-particle normalised w_order x "
                     "w_pT; noise, < 4-hit particles and secondaries weigh 0)",
    "accuracy": "fraction of correct predictions",
    "macro_recall": "recall averaged over classes",
    "macro_precision": "precision averaged over classes",
    "recall": "true positives / positives",
    "precision": "true positives / predicted positives",
    "roc_auc": "area under the ROC curve",
    "resolution_pt": "sigma of (pT_reco - pT_true) / pT_true from a Gaussian core fit",
    "resolution_d0": "sigma of d0_reco - d0_true (cm)",
    "resolution_vertex_z": "sigma of z_vertex_reco - z_vertex_true (cm)",
    "rmse": "root mean square error",
    "relative_rmse": "root mean square of (prediction - truth) / truth",
}
#: Labels computed from the truth particles at benchmark time (not stored columns).
DERIVED_LABELS = {
    "thrust": "event thrust of the charged final-state particles",
    "charged_multiplicity": "number of charged final-state particles",
    "b_tag": "truth_quark_flavour == 5 (b) against 1-3 (light)",
    "log_x": "log10 of truth_x", "log_q2": "log10 of truth_q2",
}
_KEYS = {"name", "version", "family", "description", "corpus", "splits", "tasks", "reference"}
_TASK_KEYS = {"level", "labels", "metrics", "subsystems", "note"}


def _fail(path: Path, key: str, problem: str, fix: str) -> NpfmError:
    return NpfmError(f"{path} {key}", problem, fix)


def load_benchmark(path: Path | str) -> dict[str, Any]:
    """Read and check one definition; errors name the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise NpfmError(str(path), f"cannot be read as YAML ({exc})".replace("\n", " "),
                        "give a benchmark definition file") from None
    if not isinstance(raw, dict) or set(raw) - _KEYS or not {"name", "version", "tasks",
                                                              "corpus", "splits"} <= set(raw):
        raise _fail(path, "top level", f"keys {sorted(raw) if isinstance(raw, dict) else raw}",
                    f"use {sorted(_KEYS)} (name, version, corpus, splits, tasks required)")
    if not isinstance(raw["version"], int) or raw["version"] < 1:
        raise _fail(path, "version", f"{raw['version']!r}", "an integer >= 1, bumped on change")
    for sub in raw["corpus"].get("subsystems", []):
        if sub not in vocabulary.names("subsystems"):
            raise _fail(path, "corpus.subsystems", f"unknown subsystem {sub!r}",
                        f"use {', '.join(vocabulary.names('subsystems'))}")
    for split in raw["splits"].values():
        if split not in vocabulary.names("splits"):
            raise _fail(path, "splits", f"unknown split {split!r}", "use train/validation/test")
    for task, spec in raw["tasks"].items():
        key = f"tasks.{task}"
        if set(spec) - _TASK_KEYS or not {"level", "labels", "metrics"} <= set(spec):
            raise _fail(path, key, f"keys {sorted(spec)}", f"use {sorted(_TASK_KEYS)}")
        for label in spec["labels"]:
            if label not in BY_NAME and label not in DERIVED_LABELS:
                raise _fail(path, f"{key}.labels", f"unknown label {label!r}",
                            "use an event-model column or one of "
                            f"{', '.join(DERIVED_LABELS)}")
        for metric in spec["metrics"]:
            if metric not in METRICS:
                raise _fail(path, f"{key}.metrics", f"unknown metric {metric!r}",
                            f"use one of {', '.join(METRICS)}")
    return dict(raw)


def load_all(directory: Path | str) -> dict[str, dict[str, Any]]:
    """Every ``*.yaml`` definition in ``directory``, by name."""
    out = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        bench = load_benchmark(path)
        out[bench["name"]] = bench
    return out
