"""FSDP (fully_shard) pretraining with two CPU processes (gloo), started as torchrun starts
them: the same loss curve as one process, full safetensors checkpoints, and an exact
resume after SIGKILL."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from small_corpora import (
    aleph_object_events,
    losses,
    start_ranks,
    toy_hit_events,
    wait_ranks,
    write_config,
    write_events,
)

from npfm.events.errors import NpfmError
from npfm.model.foundation import FoundationModel
from npfm.train.config import load_config
from npfm.train.loop import pretrain

STEPS, EVERY = 6, 3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two shards with the same content (6 toy hit events and 4 real ALEPH object-only
    events; other event numbers). A batch is one shard, so each of two ranks and the
    single process see the same events every step (each rank in its own order)."""
    content = toy_hit_events(6, seed=5) + aleph_object_events(4)

    def shard(first: int) -> list[dict[str, object]]:
        events = copy.deepcopy(content)
        for i, event in enumerate(events):
            event["run"], event["event"] = 1, first + i
        return events

    return write_events(tmp_path_factory.mktemp("fsdp") / "corpus", [shard(0), shard(100)])


def _log(run: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_fsdp_matches_one_process_and_resumes_exactly(tmp_path: Path, corpus: Path) -> None:
    # max_hits above the largest event (271 hits): no event is split into windows, so a
    # batch stays one shard (windows would carry over into the next shard's batch)
    config = write_config(tmp_path / "config.json", [(corpus, "mixed")], batch_events=10,
                          steps=STEPS, checkpoint_every=EVERY, max_hits=300, parallel="fsdp")
    pretrain(load_config(config), tmp_path / "single")  # one process: no sharding
    single = losses(tmp_path / "single")

    run = tmp_path / "fsdp"
    ranks = start_ranks(config, run, errors=subprocess.DEVNULL)
    log, deadline = run / "metrics.jsonl", time.monotonic() + 240
    while time.monotonic() < deadline and ranks[0].poll() is None:  # kill after step 4
        if log.exists() and len(log.read_text().splitlines()) >= EVERY + 1:
            break
        time.sleep(0.02)
    for proc in ranks:
        proc.kill()  # SIGKILL
        proc.wait()
    before_kill = _log(run)
    assert (run / "checkpoints/latest").read_text() == f"step-{EVERY:07d}"
    assert len(before_kill) > EVERY

    wait_ranks(start_ranks(config, run))  # resumes from step 3 under FSDP
    resumed = _log(run)
    assert [m["step"] for m in resumed] == list(range(1, STEPS + 1))
    for old, new in zip(before_kill, resumed, strict=False):  # steps redone after the kill
        assert (old["loss"], old["grad_norm"]) == (new["loss"], new["grad_norm"])
    assert [m["loss"] for m in resumed] == pytest.approx(single, rel=1e-5)
    assert all(0 < m["object_token_fraction"] < 1 for m in resumed)  # hits and objects

    # The checkpoint is the full model, loadable without FSDP (as npfm embed does).
    ckpt = run / "checkpoints" / (run / "checkpoints/latest").read_text()
    model = FoundationModel(load_config(config))
    weights = load_file(str(ckpt / "model.safetensors"))
    assert {k: tuple(v.shape) for k, v in weights.items()} == \
        {k: tuple(v.shape) for k, v in model.state_dict().items()}
    single_ckpt = tmp_path / "single/checkpoints" / f"step-{STEPS:07d}"
    reference = load_file(str(single_ckpt / "model.safetensors"))
    for name, value in weights.items():
        assert value.allclose(reference[name], rtol=1e-4, atol=1e-6), name
    # The optimiser state has the single-process format and values (any mode resumes it).
    sharded = torch.load(ckpt / "state.pt", weights_only=False)["optimizer"]
    plain = torch.load(single_ckpt / "state.pt", weights_only=False)["optimizer"]
    assert [g["params"] for g in sharded["param_groups"]] == \
        [g["params"] for g in plain["param_groups"]]
    assert sharded["state"].keys() == plain["state"].keys()
    for index, moments in plain["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            assert sharded["state"][index][key].allclose(moments[key], rtol=1e-4, atol=1e-7)


def test_parallel_mode_and_objects_are_checked(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(NpfmError, match=r"parallel: unknown mode 'zero3'.*use ddp or fsdp"):
        load_config(write_config(tmp_path / "c.json", [(corpus, "c")], parallel="zero3"))
    with pytest.raises(NpfmError, match="objects: 'yes' is not true or false"):
        load_config(write_config(tmp_path / "c.json", [(corpus, "c")], objects="yes"))
