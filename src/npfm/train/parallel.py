"""Fully sharded data parallelism (FSDP2) for the large model sizes, under ``torchrun``.

``shard(model)`` applies ``torch.distributed.fsdp.fully_shard`` to every backbone block
and then to the whole model (tokenisers, final norm and heads), so each rank holds
1/world of every parameter, gradient and AdamW moment (DTensors sharded on dim 0);
parameters are gathered block by block for forward and backward and gradients are
reduce-scattered (averaged over ranks, as DDP does).

Checkpoints do not depend on the parallel mode: ``full_state`` gathers the full weights
and the optimiser state (``torch.distributed.checkpoint.state_dict``) into torch's
plain, index-keyed ``optimizer.state_dict()`` format on rank 0, and ``load_optimizer``
shards such a state again. A run therefore resumes under FSDP, DDP or a single process
from the same files, and ``npfm embed`` reads them unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import fully_shard

#: Full (unsharded) state dicts, offloaded to the CPU of rank 0 (other ranks get {}).
GATHERED = StateDictOptions(full_state_dict=True, cpu_offload=True)


def shard(model: torch.nn.Module) -> None:
    """Shard ``model`` (a ``FoundationModel``) in place: one FSDP unit per backbone block,
    and the root unit for the remaining parameters."""
    for block in model.get_submodule("backbone.layers").children():
        fully_shard(block)
    fully_shard(model)


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer
               ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Collective (call on every rank): the full weights by parameter name and the optimiser
    state in plain index-keyed form, complete on rank 0 and empty elsewhere."""
    weights = {name: value for name, value in get_model_state_dict(model, options=GATHERED)
               .items() if isinstance(value, torch.Tensor)}
    named: dict[str, Any] = dict(get_optimizer_state_dict(model, optimizer, options=GATHERED))
    if not named:
        return weights, {}
    order = [name for group in named["param_groups"] for name in group["params"]]
    index = {name: i for i, name in enumerate(order)}
    return weights, {
        "state": {index[name]: value for name, value in named["state"].items()},
        "param_groups": [{**group, "params": [index[n] for n in group["params"]]}
                         for group in named["param_groups"]]}


def load_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   state: dict[str, Any]) -> None:
    """Collective: load a plain index-keyed optimiser state (as saved by any mode) into the
    optimiser of the sharded ``model``; every rank passes the full state."""
    names = {id(p): name for name, p in model.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    named: dict[str, Any] = {"state": {order[i]: value for i, value in state["state"].items()},
             "param_groups": [{**group, "params": [order[i] for i in group["params"]]}
                              for group in state["param_groups"]]}
    set_optimizer_state_dict(model, optimizer, named,
                             options=StateDictOptions(full_state_dict=True))
