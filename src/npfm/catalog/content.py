"""Descriptions and keywords of a corpus generated from its content at registration.

What a corpus holds is read from it, not retyped: hits per event of each subsystem and
the label columns present (``npfm.events.summary.summarize``, the numbers of ``npfm
inspect``), and the event-level columns naming the physics process, generator, tune and
detector geometry version. Keywords come from the controlled vocabularies of the event
model (subsystem names and kinds, data levels, label kinds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from npfm.events import vocabulary
from npfm.events.corpus import Corpus
from npfm.events.summary import summarize

#: Event-level columns that describe how the events were made.
ORIGIN_COLUMNS = ("process", "generator", "generator_version", "generator_tune",
                  "geometry_id", "geometry_version")
#: Label columns -> what they label, in words (and keywords).
LABELS = {"hit_track_id": "truth track of each hit", "hit_particle": "truth particle of each hit",
          "hit_pid_class": "particle-identification class", "hit_noise": "noise flag",
          "hit_edep": "energy deposit", "hit_t": "hit time", "object_type": "object type",
          "truth_x": "DIS kinematics (x, Q²)", "truth_quark_flavour": "quark flavour"}
#: Subsystem kind (event-model vocabulary) -> words for descriptions and keywords.
KINDS = {"pixel": "silicon pixel tracker", "strip": "silicon strip tracker",
         "gaseous": "gaseous tracker", "calorimeter": "calorimeter"}
#: Descriptions that only name the tool; a generated description replaces them.
GENERIC = ("Pythia 8 events through the npfm fast detector simulation.", "")


def _subsystem_kinds() -> dict[str, str]:
    path = Path(vocabulary.__file__).with_name("vocabulary.yaml")
    import yaml

    return {s["name"]: s["kind"] for s in yaml.safe_load(path.read_text())["subsystems"]}


def _origins(corpus: Corpus) -> dict[str, list[str]]:
    """Distinct values of the origin columns over the shards (small columns only)."""
    found: dict[str, set[str]] = {c: set() for c in ORIGIN_COLUMNS}
    for entry in corpus.shards:
        path = corpus.shard_path(entry)
        names = set(pq.read_schema(path).names)
        table = pq.read_table(path, columns=[c for c in ORIGIN_COLUMNS if c in names])
        for column in table.column_names:
            found[column].update(str(v) for v in pc.unique(table[column]).to_pylist() if v)
    return {k: sorted(v) for k, v in found.items() if v}


def corpus_content(root: Path) -> dict[str, Any]:
    """Events, mean hits per event by subsystem, labels, splits and origins of a corpus."""
    corpus = Corpus.open(root)
    summary = summarize(corpus)
    hits = {}
    for name, histogram in summary.hist.items():
        if name.startswith("hits/") and name != "hits/all" and histogram.sum():
            hits[name[5:]] = round(summary.stats(name)[1], 1)
    return {"events": summary.events, "hits_per_event": hits,
            "labels": [c for c in LABELS if summary.present.get(c)],
            "splits": {k: v for k, v in summary.categories.get("split", {}).items()
                       if k != "None"},
            "origins": _origins(corpus)}


def describe(content: dict[str, Any], facets: dict[str, list[Any]]
             ) -> tuple[str, list[str], list[str]]:
    """(description, keywords, extra search terms) of a corpus from its content."""
    kinds = _subsystem_kinds()
    origins, hits = content["origins"], content["hits_per_event"]
    experiment = ", ".join(facets.get("experiment", [])) or "npfm"
    system = ", ".join(facets.get("collision_system", []))
    energy = " and ".join(f"{e:g}" for e in facets.get("energy_gev", []))
    level = ", ".join(facets.get("data_level", []))
    parts = [f"{level.capitalize() or 'Detector'} {experiment} {system} events"
             + (f" at √s = {energy} GeV" if energy else "")
             + (f" ({', '.join(facets['facility'])})" if facets.get("facility") else "")
             + f": {content['events']} events."]
    if origins.get("process"):
        made = f"Physics process {', '.join(origins['process'])}"
        if origins.get("generator"):
            made += f", generated with {' '.join(origins['generator'])}"
            made += f" {'/'.join(origins.get('generator_version', []))}".rstrip()
        if origins.get("generator_tune"):
            made += f" (tune {', '.join(origins['generator_tune'])})"
        parts.append(made + ".")
    if origins.get("geometry_id"):
        versions = "/".join(origins.get("geometry_version", []))
        parts.append(f"Detector geometry {', '.join(origins['geometry_id'])}"
                     + (f" version {versions}" if versions else "") + ".")
    if hits:
        parts.append("Mean hits per event: " + ", ".join(
            f"{n} {h:g} ({KINDS.get(kinds.get(n, ''), 'detector')})" for n, h in hits.items())
            + ".")
    if content["labels"]:
        parts.append("Labels: " + ", ".join(LABELS[c] for c in content["labels"]) + ".")
    if content["splits"]:
        parts.append("Splits: " + ", ".join(f"{k} {v}" for k, v in
                                            sorted(content["splits"].items())) + " events.")
    trackers = sorted({KINDS[kinds[n]] for n in hits if kinds.get(n) in KINDS
                       and kinds[n] != "calorimeter"})
    keywords = [*facets.get("experiment", []), *facets.get("facility", []),
                *facets.get("collision_system", []), *hits, *trackers,
                *origins.get("process", []), *origins.get("generator", []), *(
                    ["tracking"] if trackers and "hit_track_id" in content["labels"] else []),
                *(["particle identification"] if "hit_pid_class" in content["labels"] else []),
                *facets.get("data_level", [])]
    keywords = list(dict.fromkeys(k for k in keywords if k))
    terms = [*origins.get("generator_tune", []), *(LABELS[c] for c in content["labels"])]
    return " ".join(parts), keywords, terms
