"""The calorimeter task (electron/pion), its classical baselines and adapters that see
cells, on single-particle events simulated here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from npfm.detectors.production import SimulationJob, run_job
from npfm.events.errors import NpfmError
from npfm.physics.generate import generate
from npfm.studies.config import load_study
from npfm.studies.report import render_report
from npfm.tasks.baselines.calo import EOverPCut, ShowerShapeBDT
from npfm.tasks.calo import (
    passing_at_efficiency,
    project,
    rejection_at_efficiency,
    shower_features,
)
from npfm.tasks.data import TaskEvent
from npfm.tasks.fit import run_task, score, split_events
from npfm.tasks.specs import IGNORE, TASKS
from npfm.train.config import PretrainConfig
from npfm.train.loop import pretrain

GUN = {"pdg": (11, -11, 211, -211), "p_range": (0.3, 1.2), "eta_range": (-0.9, 0.9),
       "facility": "RHIC"}


@pytest.fixture(scope="module")
def gun_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gun") / "sphenix-gun"
    run_job(SimulationJob("sphenix", "gun", 240, seed=21, shard_events=240, run=21,
                          physics_options=GUN), out)
    return out


@pytest.fixture(scope="module")
def events(gun_corpus: Path) -> dict[str, list[TaskEvent]]:
    return split_events(TASKS["calo_eid"], gun_corpus)


def test_gun_draws_one_species_per_event_from_a_list() -> None:
    species = [int(e.pdg[0]) for e in generate("gun", 200, seed=3, pdg=(11, 211))]
    assert set(species) == {11, 211}
    assert 60 < species.count(11) < 140


def test_projection_of_a_helix_to_a_cylinder() -> None:
    radius, centre_phi, tan_dip = 300.0, 0.7, 0.4  # a curling track from the beam line
    cx, cy = radius * math.cos(centre_phi), radius * math.sin(centre_phi)
    turn = np.linspace(0.02, 0.3, 40)  # angle travelled on the circle from the origin
    x = cx - radius * np.cos(centre_phi - turn)
    y = cy - radius * np.sin(centre_phi - turn)
    z = 1.5 + tan_dip * radius * turn
    dense = np.linspace(0, 1.0, 200_001)
    xs, ys = cx - radius * np.cos(centre_phi - dense), cy - radius * np.sin(centre_phi - dense)
    hit = np.argmin(np.abs(np.hypot(xs, ys) - 93.5))
    eta, phi = project(x, y, z, 93.5)
    assert phi == pytest.approx(math.atan2(ys[hit], xs[hit]), abs=1e-4)
    assert eta == pytest.approx(math.asinh((1.5 + tan_dip * radius * dense[hit]) / 93.5),
                                abs=1e-4)
    assert project(x, y, z, 700.0) is None  # the circle never reaches 7 m


def test_rejection_at_90_percent_efficiency() -> None:
    y = np.array([1] * 10 + [0] * 20)
    signal = np.linspace(0.55, 1.0, 10)  # the 90% cut keeps scores >= 0.6
    background = np.r_[np.full(16, 0.1), [0.58, 0.65, 0.7, 0.9]]
    assert rejection_at_efficiency(y, np.r_[signal, background]) == pytest.approx(20 / 3)
    assert rejection_at_efficiency(y, np.r_[signal, np.zeros(20)]) == 20  # a lower bound
    assert passing_at_efficiency(y, np.r_[signal, background]) == 3
    assert passing_at_efficiency(y, np.r_[signal, np.zeros(20)]) == 0
    assert math.isnan(rejection_at_efficiency(np.ones(3), np.ones(3)))


def test_labels_and_shower_shapes_separate_electrons_from_pions(
        events: dict[str, list[TaskEvent]]) -> None:
    every = [e for split in events.values() for e in split]
    table = [shower_features(e) for e in every]
    labels = np.array([label for _, label in table])
    assert (labels != IGNORE).mean() > 0.9  # almost every gun track reaches the EMCal
    feats = np.stack([f for f, _ in table])
    e_over_p = {c: np.nanmedian(feats[labels == c, 0]) for c in (0, 1)}
    assert 0.8 < e_over_p[1] < 1.1  # electrons deposit their energy in the EMCal
    assert e_over_p[0] < 0.5  # pions mostly pass as MIPs
    assert np.nanmedian(feats[labels == 1, 1]) < np.nanmedian(feats[labels == 0, 1])
    pdg = np.array([abs(int(e.particles["particle_pdg"][0])) for e in every])
    assert np.array_equal(labels[labels != IGNORE], (pdg[labels != IGNORE] == 11).astype(int))


def test_baselines_are_scored_like_the_adapters(events: dict[str, list[TaskEvent]]) -> None:
    task = TASKS["calo_eid"]
    for baseline in (EOverPCut(), ShowerShapeBDT(seed=0)):
        prob = baseline.fit(events["train"]).predict(events["test"])
        scores = score(task, events["test"], list(prob))
        assert scores["auc"]["value"] > 0.8
        assert scores["rejection_at_90"]["lo"] <= scores["rejection_at_90"]["value"]
        assert scores["rejection_at_90"]["value"] > 2


@pytest.mark.slow
def test_adapters_see_cells(tmp_path: Path, gun_corpus: Path,
                            events: dict[str, list[TaskEvent]]) -> None:
    config = PretrainConfig(corpora=({"path": str(gun_corpus), "name": "gun"},), size="tiny",
                            batch_events=4, steps=4, warmup=1, lr=2e-3, checkpoint_every=4,
                            max_hits=1000, objects=False, cells=True)
    pretrain(config, tmp_path / "run")
    scores = {}
    for mode, steps in (("raw", 20), ("frozen", 20)):
        out = run_task("calo_eid", gun_corpus, tmp_path / "run", mode=mode, seed=1,
                       steps=steps, batch_events=8, events=events)
        assert out["probability_spread"] > 1e-4  # not collapsed
        scores[mode] = out["scores"]
    for mode in scores:  # scored on the matched tracks of the test events
        assert np.isfinite(scores[mode]["rejection_at_90"]["value"])
        assert 0 <= scores[mode]["auc"]["value"] <= 1


def test_report_shows_the_calorimeter_table(tmp_path: Path) -> None:
    ci = {"value": 12.0, "lo": 8.0, "hi": 20.0}
    calo = {"task": "calo_eid", "corpus": "gun", "n_train": 10, "n_test": 5,
            "description": "e/pi on gun events",
            "baselines": {"E/p cut": {"rejection_at_90": ci, "auc": ci, "accuracy": ci},
                          "BDT": {"rejection_at_90": ci, "auc": ci, "accuracy": ci,
                                  "passing_at_90": 0}}}
    (tmp_path / "calo.json").write_text(json.dumps(calo))
    render_report(tmp_path, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "electron/pion separation" in page
    assert "E/p cut (baseline)" in page
    assert "12.000 [8.000, 20.000]" in page
    assert "&ge; 12 (no test pion passes)" in page


def test_study_config_checks_the_calo_section(tmp_path: Path) -> None:
    base = Path(__file__).parents[2] / "configs" / "pretrain-tiny.yaml"
    study = {"corpora": {"gun": "gun"}, "pretraining": {"base": str(base), "runs": {
        "calo": [{"corpus": "gun"}]}, "cells": ["calo"]},
             "calo": {"corpus": "gun", "run": "calo", "modes": ["raw", "probe"]}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    with pytest.raises(NpfmError, match=r"calo.modes: unknown mode 'probe'"):
        load_study(path)
    study["calo"]["modes"] = ["raw", "frozen"]
    path.write_text(yaml.safe_dump(study))
    assert load_study(path).pretrain_config("calo").cells
