"""Strategy state as plain tensors and containers, for checkpoints loaded with ``weights_only=True``.

A checkpoint must not pickle objects (loading it would run code), so everything a strategy carries
from one experience to the next is turned into tensors, numbers, strings, lists and dicts here, and
rebuilt into live objects on resume:

- datasets (replay buffers): every sample's fields stacked into tensors, data attributes as lists;
- Avalanche plugins: the clock, EWC's saved parameters and importances, replay storage policies
  (reservoir and balanced buffers); a plugin or storage policy of our own keeps its state by
  defining ``checkpoint_state()`` and ``restore_checkpoint_state(state, strategy)``;
- the optimizer (its state dict, after pointing it at the model's current parameters, as
  Avalanche's ``reset_optimizer`` does) and the random number generators.

Plugins of other types make the strategy non-checkpointable (``state_dict()`` is None), unless
listed as stateless (progress, evaluation) or marked ``stateless = True``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from unicon_bench.errors import CheckpointError

# -- random number generators ----------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's global generators (CUDA too, if initialised)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state({
        "bit_generator": n["bit_generator"],
        "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
        "has_gauss": n["has_gauss"],
        "gauss": n["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- datasets --------------------------------------------------------------------------------------


def dataset_state(dataset) -> dict[str, Any]:
    """An AvalancheDataset's samples as stacked tensors, and its data attributes as lists."""
    # Avalanche has no public list of a dataset's attributes; they live in ``_data_attributes``.
    attrs = list(dataset._data_attributes.values())
    n_attr = sum(a.use_in_getitem for a in attrs)
    samples = [dataset[i] for i in range(len(dataset))]
    n_fields = (len(samples[0]) if samples else 0) - n_attr
    fields = [torch.stack([torch.as_tensor(s[k]) for s in samples]) for k in range(n_fields)]
    return {
        "fields": fields,
        "attributes": [
            {"name": a.name, "values": [int(v) if isinstance(v, (int, np.integer)) else v for v in a],
             "use_in_getitem": bool(a.use_in_getitem)}
            for a in attrs
        ],
    }


def dataset_from_state(state: dict[str, Any]):
    """The AvalancheDataset ``dataset_state`` described: the same samples, in the same order."""
    from avalanche.benchmarks.utils import AvalancheDataset, concat_datasets
    from avalanche.benchmarks.utils.data_attribute import DataAttribute, TaskLabels
    from torch.utils.data import TensorDataset

    if not state["fields"]:  # an empty buffer
        return concat_datasets([])
    attributes = [
        TaskLabels(a["values"]) if a["name"] == "targets_task_labels"
        else DataAttribute(a["values"], a["name"], use_in_getitem=a["use_in_getitem"])
        for a in state["attributes"]
    ]
    return AvalancheDataset([TensorDataset(*state["fields"])], data_attributes=attributes)


# -- Avalanche plugins and storage policies ----------------------------------------------------------

# Plugins known to hold nothing from one experience to the next; any other plugin without an adapter
# here or a checkpoint_state() makes its strategy non-checkpointable rather than resume wrongly.
STATELESS = {"EvaluationPlugin", "ProgressPlugin", "PeriodicEval"}  # PeriodicEval: the harness evaluates (eval_every=-1)


class NotCheckpointable(Exception):
    """A plugin whose state cannot be saved: the run keeps no checkpoints (and cannot resume)."""


def _params_state(params: dict) -> dict:
    return {exp: {name: p.data.clone() for name, p in d.items()} for exp, d in params.items()}


def _load_params(target: dict, state: dict) -> None:
    from avalanche.training.utils import ParamData

    target.clear()
    for exp, d in state.items():
        target[exp] = {name: ParamData(name, init_tensor=t.clone(), device=t.device) for name, t in d.items()}


def storage_state(policy) -> dict[str, Any]:
    """A replay storage policy's buffers and sizes."""
    from avalanche.training.storage_policy import ExperienceBalancedBuffer, ReservoirSamplingBuffer

    if hasattr(policy, "checkpoint_state"):
        return policy.checkpoint_state()
    # exact types: a subclass may keep more (e.g. DER's stored outputs)
    if type(policy) is ReservoirSamplingBuffer:
        return {"max_size": policy.max_size, "buffer": dataset_state(policy.buffer), "weights": policy._buffer_weights.clone()}
    if type(policy) is ExperienceBalancedBuffer:
        groups = {k: storage_state(g) for k, g in policy.buffer_groups.items()}
        simple = {k: v for k, v in vars(policy).items() if isinstance(v, (int, float, bool, str)) or v is None}
        return {"groups": groups, "attributes": simple}
    raise NotCheckpointable(f"cannot checkpoint the replay storage policy {type(policy).__name__}: "
                            "give it checkpoint_state() and restore_checkpoint_state(state, strategy)")


def restore_storage(policy, state: dict[str, Any], strategy) -> None:
    from avalanche.training.storage_policy import BalancedExemplarsBuffer, ReservoirSamplingBuffer

    if hasattr(policy, "restore_checkpoint_state"):
        policy.restore_checkpoint_state(state, strategy)
    elif isinstance(policy, ReservoirSamplingBuffer):
        policy.max_size = state["max_size"]
        policy.buffer = dataset_from_state(state["buffer"])
        policy._buffer_weights = state["weights"]
    elif isinstance(policy, BalancedExemplarsBuffer):
        for name, value in state["attributes"].items():
            setattr(policy, name, value)
        policy.buffer_groups = {}
        for k, group_state in state["groups"].items():
            group = ReservoirSamplingBuffer(group_state["max_size"])
            restore_storage(group, group_state, strategy)
            policy.buffer_groups[k] = group


def plugin_state(plugin) -> dict[str, Any]:
    """``{"type": class name, "state": ...}`` of one template plugin (``None`` if it holds no state)."""
    from avalanche.training.plugins import EWCPlugin, ReplayPlugin
    from avalanche.training.plugins.clock import Clock

    if hasattr(plugin, "checkpoint_state"):
        state = plugin.checkpoint_state()
    elif isinstance(plugin, Clock):
        state = {k: v for k, v in vars(plugin).items() if isinstance(v, int) and not isinstance(v, bool)}
    elif isinstance(plugin, EWCPlugin):
        state = {"saved_params": _params_state(plugin.saved_params), "importances": _params_state(plugin.importances)}
    elif isinstance(plugin, ReplayPlugin):
        state = {"storage": storage_state(plugin.storage_policy)}
    elif getattr(plugin, "stateless", False) or type(plugin).__name__ in STATELESS:
        state = None
    else:
        raise NotCheckpointable(f"plugin {type(plugin).__qualname__} may carry state across experiences and "
                                "defines no checkpoint_state()")
    return {"type": type(plugin).__qualname__, "state": state}


def restore_plugin(plugin, saved: dict[str, Any], strategy) -> None:
    from avalanche.training.plugins import EWCPlugin, ReplayPlugin
    from avalanche.training.plugins.clock import Clock

    if saved["type"] != type(plugin).__qualname__:
        raise CheckpointError(f"the checkpoint holds a {saved['type']} plugin where the strategy has {type(plugin).__qualname__}")
    state = saved["state"]
    if hasattr(plugin, "restore_checkpoint_state"):
        plugin.restore_checkpoint_state(state, strategy)
    elif isinstance(plugin, Clock):
        for name, value in state.items():
            setattr(plugin, name, value)
    elif isinstance(plugin, EWCPlugin):
        _load_params(plugin.saved_params, state["saved_params"])
        _load_params(plugin.importances, state["importances"])
    elif isinstance(plugin, ReplayPlugin):
        restore_storage(plugin.storage_policy, state["storage"], strategy)


def restore_optimizer(optimizer: torch.optim.Optimizer, model: torch.nn.Module, state: dict) -> None:
    """Load an optimizer state saved when the optimizer held all of ``model``'s parameters."""
    if len(optimizer.param_groups) == 1 and len(state["param_groups"]) == 1:
        # the template points its single group at the model's parameters before every experience
        # (Avalanche's reset_optimizer); a restored model may have grown since construction
        optimizer.param_groups[0]["params"] = list(model.parameters())
    optimizer.load_state_dict(state)
