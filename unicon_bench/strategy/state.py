"""Strategy state as plain tensors and containers, for checkpoints loaded with ``weights_only=True``.

A checkpoint must not pickle objects (loading it would run code), so everything a strategy carries
from one experience to the next is turned into tensors, numbers, strings, lists and dicts here, and
rebuilt into live objects on resume:

- datasets (replay buffers): every sample's fields stacked into tensors, data attributes as lists;
- Avalanche plugins: the clock, EWC's saved parameters and importances, replay storage policies
  (reservoir and balanced buffers); a plugin or storage policy of our own keeps its state by
  defining ``checkpoint_state()`` and ``restore_checkpoint_state(state, strategy)``, or, when that
  state is a few attributes (dicts of Avalanche ``ParamData``, tensors, numbers), by mixing in
  ``CheckpointAttributes`` and naming them (SI, MAS, RWalk); ``plain``/``rebuild`` convert them;
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

    from unicon_bench.data.streams import collate_samples

    if not state["fields"]:  # an empty buffer
        return concat_datasets([])
    attributes = [
        TaskLabels(a["values"]) if a["name"] == "targets_task_labels"
        else DataAttribute(a["values"], a["name"], use_in_getitem=a["use_in_getitem"])
        for a in state["attributes"]
    ]
    # every dataset of ours collates with the zero-padding collate (mixed channel counts)
    return AvalancheDataset([TensorDataset(*state["fields"])], data_attributes=attributes, collate_fn=collate_samples)


# -- Avalanche plugins and storage policies ----------------------------------------------------------

# Plugins known to hold nothing from one experience to the next; any other plugin without an adapter
# here or a checkpoint_state() makes its strategy non-checkpointable rather than resume wrongly.
# PeriodicEval: the harness evaluates (eval_every=-1). PackNetPlugin: the masks and task counters
# are buffers of the model, the epoch count is set before each training and the optimizer rebuilt
# before each experience.
STATELESS = {"EvaluationPlugin", "ProgressPlugin", "PeriodicEval", "PackNetPlugin"}


class NotCheckpointable(Exception):
    """A plugin whose state cannot be saved: the run keeps no checkpoints (and cannot resume)."""


def plain(value) -> Any:
    """``value`` as tensors and plain containers: Avalanche's ``ParamData`` (marked, with its name),
    tensors (copied), dicts, lists, tuples (marked), numbers, strings and None."""
    from avalanche.training.utils import ParamData

    if isinstance(value, ParamData):
        return {"__param__": value.name, "data": value.data.detach().clone()}
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return {"__tuple__": [plain(v) for v in value]}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise NotCheckpointable(f"cannot checkpoint a value of type {type(value).__qualname__}")


def rebuild(saved, device: torch.device | str | None = None) -> Any:
    """The live value ``plain`` described (``ParamData`` and tensors on ``device``, if given)."""
    from avalanche.training.utils import ParamData

    if isinstance(saved, torch.Tensor):
        return saved.clone() if device is None else saved.to(device, copy=True)
    if isinstance(saved, dict):
        if "__param__" in saved:
            data = rebuild(saved["data"], device)
            return ParamData(saved["__param__"], init_tensor=data, device=data.device)
        if "__tuple__" in saved:
            return tuple(rebuild(v, device) for v in saved["__tuple__"])
        return {k: rebuild(v, device) for k, v in saved.items()}
    if isinstance(saved, list):
        return [rebuild(v, device) for v in saved]
    return saved


class CheckpointAttributes:
    """Mixin for a plugin whose state across experiences is a few attributes of ``plain`` types
    (dicts of ``ParamData``, tensors, numbers): name them in ``checkpoint_attributes``."""

    checkpoint_attributes: tuple[str, ...] = ()

    def checkpoint_state(self) -> dict[str, Any]:
        return {name: plain(getattr(self, name)) for name in self.checkpoint_attributes}

    def restore_checkpoint_state(self, state: dict[str, Any], strategy) -> None:
        missing = [name for name in self.checkpoint_attributes if name not in state]
        if missing:
            raise CheckpointError(f"the checkpoint of {type(self).__qualname__} lacks {', '.join(missing)}")
        for name in self.checkpoint_attributes:
            setattr(self, name, rebuild(state[name], strategy.device))


def storage_state(policy) -> dict[str, Any]:
    """A replay storage policy's buffers and sizes."""
    from avalanche.training.storage_policy import ExperienceBalancedBuffer, ReservoirSamplingBuffer

    if hasattr(policy, "checkpoint_state"):
        return policy.checkpoint_state()
    # exact types: a subclass may keep more (e.g. DER's stored outputs)
    if type(policy) is ReservoirSamplingBuffer:
        return {"max_size": policy.max_size, "buffer": dataset_state(policy.buffer), "weights": policy._buffer_weights.clone()}
    if type(policy) is ExperienceBalancedBuffer:
        return balanced_buffer_state(policy)
    raise NotCheckpointable(f"cannot checkpoint the replay storage policy {type(policy).__name__}: "
                            "give it checkpoint_state() and restore_checkpoint_state(state, strategy)")


def balanced_buffer_state(policy) -> dict[str, Any]:
    """A balanced buffer's groups (reservoir buffers) and its plain attributes (sizes, counters)."""
    groups = {k: storage_state(g) for k, g in policy.buffer_groups.items()}
    simple = {k: v for k, v in vars(policy).items() if isinstance(v, (int, float, bool, str)) or v is None}
    return {"groups": groups, "attributes": simple}


def restore_storage(policy, state: dict[str, Any], strategy) -> None:
    from avalanche.training.storage_policy import BalancedExemplarsBuffer, ReservoirSamplingBuffer

    if hasattr(policy, "restore_checkpoint_state"):
        policy.restore_checkpoint_state(state, strategy)
    elif isinstance(policy, ReservoirSamplingBuffer):
        policy.max_size = state["max_size"]
        policy.buffer = dataset_from_state(state["buffer"])
        policy._buffer_weights = state["weights"]
    elif isinstance(policy, BalancedExemplarsBuffer):
        restore_balanced_buffer(policy, state, strategy)


def restore_balanced_buffer(policy, state: dict[str, Any], strategy) -> None:
    """Restore ``balanced_buffer_state`` into a freshly built balanced buffer."""
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

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
        state = {"saved_params": plain(dict(plugin.saved_params)), "importances": plain(dict(plugin.importances))}
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
        for target, name in ((plugin.saved_params, "saved_params"), (plugin.importances, "importances")):
            target.clear()  # keep the plugin's own (default)dict
            target.update(rebuild(state[name], strategy.device))
    elif isinstance(plugin, ReplayPlugin):
        restore_storage(plugin.storage_policy, state["storage"], strategy)


def restore_optimizer(optimizer: torch.optim.Optimizer, model: torch.nn.Module, state: dict) -> None:
    """Load an optimizer state saved when the optimizer held all of ``model``'s parameters."""
    if len(optimizer.param_groups) == 1 and len(state["param_groups"]) == 1:
        # the template points its single group at the model's parameters before every experience
        # (Avalanche's reset_optimizer); a restored model may have grown since construction
        optimizer.param_groups[0]["params"] = list(model.parameters())
    optimizer.load_state_dict(state)
