"""Seeded fuzzing of the importers and the recipe loader: whatever the input, a failure is
one ``NpfmError`` line of bounded length, never another exception (a traceback)."""

import copy
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from tests.formats.test_trackml import CELLS, TRUTH
from tests.formats.test_trackml import HITS as TML_HITS
from tests.formats.test_trackml import PARTICLES as TML_PARTICLES

from npfm.curate.recipe import load_recipe
from npfm.events.build import events_to_table
from npfm.events.errors import NpfmError
from npfm.formats import aleph_text, hit_table, trackml

#: Seconds each fuzz target may run (the cases are cheap: hundreds per target).
BUDGET_S = 1.5
JUNK = ["", "nan", "inf", "-inf", "1e999", "-1e400", "99999999999999999999999", "abc",
        "x" * 3000, "\u00e9\u221e", "0x1F", "1,5", "=", "-", "END_EVENT", "END_FILE",
        "MC_RECO", "pid", "pwflag", "3.5", "-7", "\t", "1e-320"]
VALUES: list[Any] = [None, 5, -1, 0, 2.5, "x", "", [], {}, [1, 2], {"bogus": 1}, True,
                     float("nan"), float("inf"), "x" * 500, 10**30, ["*"], "sphenix"]

ALEPH = """MC_RECO RUN = 10 EVENT 60 ECM = 206.500 GEV
 Primary vertex info flag = 4 vx = -0.0855 vy = 0.0485 ex = 0.0057 ey = 0.0000
px= -0.204 py= 0.120 pz= -0.160 m= 0.140 charge -1.0 pwflag 0
px= 1.0 py= 2.0 pz= 3.0 m= 0.0 charge 0.0 pwflag 4 d0 -999.0 z0 -999.0 ntpc 0 nitc 0 nvdet 0
px= 0.7 py= 0.2 pz= -0.4 m= 0.1 charge 1.0 pwflag 0 pid 8 pname pi+
  1.0  2.0  3.0  0.140  1.0  0
END_EVENT
END_FILE
"""
HITS = "evt,hx,hy,hz,edep,pid\n1,10,0,5,1.5,7\n1,20,1,6,2.5,-1\n2,30,2,7,1.0,8\n"
PARTICLES = "evt,key,pdg,px,py,pz\n1,7,211,500,0,10\n2,8,-11,30,20,0\n"
MAPPING = {
    "hits": {"file": "hits.csv", "subsystem": "TPC",
             "columns": {"event": "evt", "x": "hx", "y": "hy", "z": "hz", "energy": "edep",
                         "particle": "pid"},
             "units": {"x": "mm", "y": "mm", "z": "mm", "energy": "MeV"}},
    "particles": {"file": "particles.csv",
                  "columns": {"event": "evt", "key": "key", "pdg": "pdg", "px": "px",
                              "py": "py", "pz": "pz"},
                  "units": {"px": "MeV", "py": "MeV", "pz": "MeV"}},
    "event": {"facility": "RHIC", "experiment": "sPHENIX", "data_level": "simulated"},
}
RECIPE = {
    "name": "fuzz", "title": "t", "splits": {"train": 0.8, "validation": 0.1, "test": 0.1},
    "chunk_events": 10,
    "sources": [{"name": "sim", "simulate": {"detector": "aleph", "physics": "ee_z",
                                             "events": 5, "options": {}}},
                {"name": "arc", "import": {"format": "aleph_text", "paths": ["a.aleph"],
                                           "max_events": 3}}],
}


def _mutate_text(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        kind = rng.randrange(6)
        tokens = lines[i].split(" ")
        if kind == 0 and tokens:
            tokens[rng.randrange(len(tokens))] = rng.choice(JUNK)
            lines[i] = " ".join(tokens)
        elif kind == 1:
            del lines[i]
        elif kind == 2:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif kind == 3:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif kind == 4:
            lines[i] = lines[i].replace(",", rng.choice([",,", ";", ""]), 1)
        else:
            lines.insert(i, rng.choice(JUNK))
        if not lines:
            lines = [""]
    return "\n".join(lines)


def _mutate_tree(rng: random.Random, tree: Any) -> Any:
    tree = copy.deepcopy(tree)
    for _ in range(rng.randint(1, 3)):
        node, key = tree, None
        while isinstance(node, dict | list) and node and rng.random() < 0.7:
            key = rng.choice(list(node)) if isinstance(node, dict) else \
                rng.randrange(len(node))
            if not isinstance(node[key], dict | list):
                break
            node = node[key] if rng.random() < 0.8 else node
        if not isinstance(node, dict | list) or not node:
            continue
        key = key if key is not None and _has(node, key) else (
            rng.choice(list(node)) if isinstance(node, dict) else 0)
        action = rng.randrange(3)
        if action == 0:
            node[key] = rng.choice(VALUES)
        elif action == 1:
            del node[key]
        elif isinstance(node, dict):
            node[rng.choice(["bogus", "name", "import", "options", "max_extent_cm"])] = \
                rng.choice(VALUES)
    return tree


def _has(node: dict[Any, Any] | list[Any], key: Any) -> bool:
    return key in node if isinstance(node, dict) else isinstance(key, int) and \
        0 <= key < len(node)


def _fuzz(run: Callable[[random.Random, int], None], seed: int) -> int:
    """Run cases until the budget is spent; every exception must be a short NpfmError."""
    rng, start, n = random.Random(seed), time.monotonic(), 0
    while time.monotonic() - start < BUDGET_S:
        try:
            run(rng, n)
        except NpfmError as err:
            message = str(err)
            assert "\n" not in message, message
            assert len(message) < 700, message[:300]
        n += 1
    return n


def test_fuzz_aleph_text(tmp_path: Path) -> None:
    def case(rng: random.Random, n: int) -> None:
        path = tmp_path / f"f{n % 4}.aleph"
        path.write_text(_mutate_text(rng, ALEPH), encoding="utf-8")
        events = [aleph_text.to_event(b, None) for b in aleph_text.read_aleph(path)] + \
            [aleph_text.to_event(None, b) for b in aleph_text.read_aleph(path)]
        events_to_table(events, source=str(path))

    assert _fuzz(case, seed=1) > 50


def test_fuzz_hit_table(tmp_path: Path) -> None:
    def case(rng: random.Random, n: int) -> None:
        (tmp_path / "hits.csv").write_text(_mutate_text(rng, HITS) if rng.random() < 0.6
                                           else HITS)
        (tmp_path / "particles.csv").write_text(_mutate_text(rng, PARTICLES)
                                                if rng.random() < 0.4 else PARTICLES)
        mapping = _mutate_tree(rng, MAPPING) if rng.random() < 0.5 else MAPPING
        text = yaml.safe_dump(mapping)
        (tmp_path / "map.yaml").write_text(_mutate_text(rng, text) if rng.random() < 0.2
                                           else text)
        events_to_table(list(hit_table.read_hit_table(tmp_path / "map.yaml")), source="t")

    assert _fuzz(case, seed=2) > 50


def test_fuzz_recipe(tmp_path: Path) -> None:
    (tmp_path / "a.aleph").write_text(ALEPH)

    def case(rng: random.Random, n: int) -> None:
        path = tmp_path / "recipe.yaml"
        if rng.random() < 0.15:
            path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
        else:
            text = yaml.safe_dump(_mutate_tree(rng, RECIPE), allow_unicode=True)
            path.write_text(_mutate_text(rng, text) if rng.random() < 0.3 else text)
        load_recipe(path, scale=rng.choice([1.0, 0.01]))

    assert _fuzz(case, seed=3) > 50


def test_fuzz_trackml(tmp_path: Path) -> None:
    texts = {"hits": TML_HITS, "cells": CELLS, "particles": TML_PARTICLES, "truth": TRUTH}

    def case(rng: random.Random, n: int) -> None:
        for old in tmp_path.iterdir():
            old.unlink()
        for kind, text in texts.items():
            if rng.random() < 0.1:
                continue  # a missing file
            (tmp_path / f"event000000007-{kind}.csv").write_text(
                _mutate_text(rng, text) if rng.random() < 0.4 else text)
        events_to_table(list(trackml.read_trackml(tmp_path)), source="t")

    assert _fuzz(case, seed=4) > 50
