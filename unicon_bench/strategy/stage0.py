"""Stage-0 sharing: train a family's experience 0 once per (scenario, seed, set-up) and let the other
strategies of the family start from it.

Every full-fine-tuning strategy whose experience 0 is plain training (naive, ewc, replay, ...) trains a
bit-identical experience-0 model for a given scenario and seed, and the parameter-efficient strategies
(unicon, seq_lora, inflora) train the same stage-0 foundation. A strategy declares its family
(``stage0_family``: ``"plain"`` or ``"peft"``; ``None``, the default, never shares: SI's path integral
and RWalk's scores are gathered while experience 0 trains).

The first run of a key stores, at the end of experience 0's training and before any plugin's
``after_training_exp`` hook, the model (weights and trainable flags), the optimizer, Python/NumPy/torch
RNG states, Avalanche's clock and which parameters received gradients. A later run of the key skips the
training epochs of experience 0 (``train_epochs = 0``: the plugins' ``before_training_exp`` hooks still
run) and installs that state at the same point, so every ``after_training_exp`` hook (EWC's Fisher,
replay's buffer, ...) and everything after sees exactly what training would have left: the final matrix
is bit-identical to a run that trained experience 0 itself (``tests/test_stage0.py``).

The key hashes what experience 0 depends on: the family, the scenario's content, the seed, the
parameters that act on experience 0 (``stage0_params``), the intra-op thread count, the precision, the
device, the torch version and the source code of unicon-bench itself (``stage0_key``, known before the
run starts), and, when experience 0 is about to train, the state it starts from: the model's
architecture and initial weights, the random generators and the optimizer's kind and settings
(``Stage0Store.bind``). A strategy whose model or start differs therefore never meets another's file. A file is written atomically
with its SHA-256 beside it; a file that is corrupt (hash), foreign (another key) or stale (another
format) is never used: the run trains experience 0 and stores it again.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from avalanche.core import SupervisedPlugin

FORMAT = 2  # 2: the clock as state.plugin_state keeps it
FAMILIES = ("plain", "peft")


@lru_cache(maxsize=1)
def code_hash() -> str:
    """SHA-256 over the source of unicon-bench (core, built-in strategies and scenarios): a stage 0 stored
    by other code is stale."""
    import unicon_bench
    import unicon_bench.scenarios
    import unicon_bench.strategies

    digest = hashlib.sha256()
    for package in (unicon_bench, unicon_bench.strategies, unicon_bench.scenarios):
        for root in map(Path, package.__path__):
            for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts):
                digest.update(f"{package.__name__}/{path.relative_to(root).as_posix()}\0".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def stage0_key(family: str, spec, seed: int, params: dict[str, Any], precision: str, device: str) -> str:
    """A hash of everything a family's experience 0 depends on."""
    identity = {
        "format": FORMAT, "family": family, "scenario": spec.model_dump(mode="json"), "seed": seed, "params": params,
        "threads": torch.get_num_threads(), "precision": precision, "device": torch.device(device).type,
        "torch": torch.__version__, "code": code_hash(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _tensor_bytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def start_fingerprint(strat) -> str:
    """SHA-256 of the state experience 0 starts from: model (names, shapes, dtypes, values), RNGs, optimizer."""
    from unicon_bench.strategy import state

    digest = hashlib.sha256()
    for name, value in strat.model.state_dict().items():
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}\0".encode())
        digest.update(_tensor_bytes(value))
    rng = state.rng_state()
    for part in (rng["python"]["internal"], rng["numpy"]["key"], rng["torch"]):
        digest.update(_tensor_bytes(part))
    digest.update(json.dumps([rng["python"]["gauss"], rng["numpy"]["pos"], rng["numpy"]["has_gauss"],
                              rng["numpy"]["gauss"]], default=str).encode())
    optimizer = strat.template.optimizer
    digest.update(f"{type(optimizer).__qualname__}:{json.dumps(optimizer.defaults, sort_keys=True, default=str)}".encode())
    return digest.hexdigest()


class Stage0Store:
    """The stage-0 file of one key in a shared folder: ``<key>.pt`` and its ``<key>.sha256``.

    ``base_key`` (``stage0_key``) is known when the run starts; ``bind`` completes it with the state
    experience 0 starts from, right before experience 0 trains."""

    def __init__(self, folder: str | Path, base_key: str):
        self.folder, self.base_key = Path(folder), base_key
        self.key: str | None = None
        self.rejected: str | None = None  # why an existing file was not used (corrupt, foreign, stale)

    def bind(self, strat) -> None:
        self.key = hashlib.sha256(f"{self.base_key}:{start_fingerprint(strat)}".encode()).hexdigest()[:32]

    @property
    def path(self) -> Path:
        return self.folder / f"{self.key}.pt"

    @property
    def hash_path(self) -> Path:
        return self.folder / f"{self.key}.sha256"

    def load(self) -> tuple[dict[str, Any], str] | None:
        """``(payload, sha256)`` of a valid stored stage 0, or None (nothing stored, or not usable: see ``rejected``)."""
        if not self.path.is_file():
            return None
        try:
            data = self.path.read_bytes()
            want = self.hash_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            return self._reject(f"unreadable ({exc.strerror or exc})")
        digest = hashlib.sha256(data).hexdigest()
        if digest != want:
            return self._reject("corrupt: its SHA-256 does not match")
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
            return self._reject(f"unreadable ({type(exc).__name__})")
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            return self._reject(f"stale: not of format {FORMAT}")
        if payload.get("key") != self.key:
            return self._reject("foreign: it was stored for another key")
        return payload, digest

    def _reject(self, why: str) -> None:
        self.rejected = why
        warnings.warn(f"shared stage 0 {self.path} not used ({why}); experience 0 is trained again", stacklevel=3)
        return None

    def save(self, payload: dict[str, Any]) -> str:
        """Store ``payload`` (atomically, then its hash); returns its SHA-256."""
        from unicon_bench.fileio import atomic_write, atomic_write_text

        buf = io.BytesIO()
        torch.save({**payload, "format": FORMAT, "key": self.key}, buf)
        digest = hashlib.sha256(buf.getbuffer()).hexdigest()
        atomic_write(self.path, lambda f: f.write(buf.getbuffer()))
        atomic_write_text(self.hash_path, digest + "\n")
        return digest


class Stage0Plugin(SupervisedPlugin):
    """First of a strategy's plugins: at the end of experience 0's training, before the other plugins'
    ``after_training_exp`` hooks, captures the state (``capture``) or installs a stored one (``restore``)."""

    stateless = True  # what it carries lives in the stage-0 file, never in a checkpoint

    def __init__(self, owner):
        super().__init__()
        self.owner = owner  # the AvalancheStrategy
        self.mode: str | None = None
        self.payload: dict[str, Any] | None = None
        self.captured: dict[str, Any] | None = None

    def after_training_exp(self, strategy, **kwargs):
        mode, self.mode = self.mode, None
        if mode == "capture":
            self.captured = capture(self.owner)
        elif mode == "restore":
            restore(self.owner, self.payload)
            self.payload = None


def capture(strat) -> dict[str, Any]:
    """What experience 0's training left in ``strat`` (an ``AvalancheStrategy``), as plain tensors."""
    from unicon_bench.strategy import state

    model, template = strat.model, strat.template
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "training": model.training,
        "optimizer": copy.deepcopy(template.optimizer.state_dict()),
        "rng": state.rng_state(),
        "clock": state.plugin_state(template.clock),  # its counters, as a checkpoint keeps them
        "updated": sorted(names[i] for i in strat.progress.updated if i in names),
    }


def restore(strat, payload: dict[str, Any]) -> None:
    """Install a captured state into ``strat`` at the point it was captured."""
    from unicon_bench.strategy import state

    model, template = strat.model, strat.template
    model.load_state_dict(payload["model"])
    params = dict(model.named_parameters())
    for n, p in params.items():
        p.requires_grad_(payload["requires_grad"][n])
    model.train(payload["training"])
    state.restore_optimizer(template.optimizer, model, payload["optimizer"])
    state.restore_plugin(template.clock, payload["clock"], strat)
    strat.progress.updated = {id(params[n]) for n in payload["updated"]}
    state.set_rng_state(payload["rng"])
