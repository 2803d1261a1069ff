"""Bring your own foundation model: read pretrained weights, map their keys, load, freeze.

``read_state_dict(path)`` reads a PyTorch state dict (``torch.load(..., weights_only=True)``, so no
pickled code runs), a ``.safetensors`` file, or a MONAI bundle folder (``models/model.pt``). A
checkpoint that wraps its state dict under ``state_dict``/``model``/``network``/``net`` is unwrapped.
``map_keys`` applies prefix rules (``"module.->"`` strips ``module.``; ``"backbone.->swinViT."``
renames), and ``load_weights`` loads the result into a module: every missing, unexpected or
differently shaped key must be allowed by a glob in ``ignore``, otherwise one ``WeightsError`` names a
few of them. Nothing here downloads anything.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from unicon_bench.errors import ConfigError

WRAPPERS = ("state_dict", "model", "network", "net", "module")
FREEZE_RE = re.compile(r"^(none|frozen|partial:(\d+))$")


class WeightsError(ConfigError):
    """Pretrained weights that cannot be read or do not fit the backbone."""


@dataclass
class LoadReport:
    """What ``load_weights`` did: keys loaded, and the missing/unexpected ones the user allowed."""

    loaded: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.loaded} tensors loaded"]
        for what, keys in (("missing (kept at init)", self.missing), ("unexpected (ignored)", self.unexpected),
                           ("of another shape (kept at init)", self.mismatched)):
            if keys:
                out.append(f"{len(keys)} {what}: {_few(keys)}")
        return out


def _few(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_file(path: str | Path) -> Path:
    """The file behind ``path``: the file itself, or a MONAI bundle folder's ``models/model.pt``."""
    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(f"backbone_weights: no such file or folder: {p}")
    if p.is_dir():
        for name in ("model.pt", "model.safetensors"):
            if (p / "models" / name).is_file():
                return p / "models" / name
        raise WeightsError(f"backbone_weights: folder {p} is not a MONAI bundle (no models/model.pt)")
    return p


def read_state_dict(path: str | Path) -> dict:
    """``{key: tensor}`` from a state dict file, a safetensors file or a MONAI bundle folder."""
    import torch

    p = weights_file(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p), device="cpu")
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling and format errors come in many types
        msg = " ".join(str(exc).split())[:300]
        raise WeightsError(f"backbone_weights: cannot read {p} as a state dict (weights_only=True): {msg}") from None
    while isinstance(state, dict) and not _is_state(state):
        inner = next((state[k] for k in WRAPPERS if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict) or not _is_state(state):
        raise WeightsError(f"backbone_weights: {p} does not hold a state dict (a mapping of names to tensors)")
    return dict(state)


def _is_state(d: dict) -> bool:
    import torch

    return bool(d) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def parse_rules(rules: str) -> list[tuple[str, str]]:
    """``"a.->b.,c.->"`` -> ``[("a.", "b."), ("c.", "")]``; an empty string gives no rule."""
    out = []
    for rule in filter(None, (r.strip() for r in rules.split(","))):
        old, sep, new = rule.partition("->")
        if not sep:
            raise WeightsError(f"weights_map: rule {rule!r} is not OLD->NEW (e.g. 'module.->' strips 'module.')")
        out.append((old.strip(), new.strip()))
    return out


def map_keys(state: dict, rules: str) -> dict:
    """Apply each prefix rule in order to every key (a key not starting with OLD is left alone)."""
    parsed = parse_rules(rules)
    out = {}
    for key, value in state.items():
        for old, new in parsed:
            if key.startswith(old):
                key = new + key[len(old):]
        if key in out:
            raise WeightsError(f"weights_map: two checkpoint keys map to {key!r}")
        out[key] = value
    return out


def load_weights(module, state: dict, ignore: str = "", source: str = "backbone_weights") -> LoadReport:
    """Load ``state`` into ``module``; keys not allowed by the ``ignore`` globs are one error."""
    patterns = [p.strip() for p in ignore.split(",") if p.strip()]
    allowed = lambda k: any(fnmatch.fnmatchcase(k, p) for p in patterns)  # noqa: E731
    own = module.state_dict()
    missing = sorted(k for k in own if k not in state)
    unexpected = sorted(k for k in state if k not in own)
    mismatched = sorted(k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape))
    bad = {name: [k for k in keys if not allowed(k)]
           for name, keys in (("missing", missing), ("unexpected", unexpected), ("mismatched", mismatched))}
    if any(bad.values()):
        parts = []
        if bad["missing"]:
            parts.append(f"{len(bad['missing'])} backbone keys missing from the file (e.g. {_few(bad['missing'], 3)})")
        if bad["unexpected"]:
            parts.append(f"{len(bad['unexpected'])} unexpected keys (e.g. {_few(bad['unexpected'], 3)})")
        if bad["mismatched"]:
            k = bad["mismatched"][0]
            parts.append(f"{len(bad['mismatched'])} keys of another shape (e.g. {k}: file {tuple(state[k].shape)}, "
                         f"backbone {tuple(own[k].shape)})")
        raise WeightsError(
            f"{source} do not fit backbone '{getattr(module, 'backbone_name', type(module).__name__)}': "
            + "; ".join(parts) + ". Rename keys with weights_map=OLD->NEW, allow keys with weights_ignore=GLOB"
        )
    fit = {k: v for k, v in state.items() if k in own and k not in mismatched}
    module.load_state_dict(fit, strict=False)
    return LoadReport(len(fit), missing, unexpected, mismatched)


def check_freeze(policy: str) -> None:
    if not FREEZE_RE.match(policy):
        raise ValueError(f"freeze must be none, frozen or partial:N (N stages), got {policy!r}")


def apply_freeze(backbone, policy: str) -> int:
    """Freeze the backbone (``frozen``), its first N stages (``partial:N``) or nothing (``none``).

    Frozen parameters stop requiring gradients; frozen batch-norm layers stop tracking running
    statistics (they normalise by the batch while training and by their stored statistics at
    evaluation, which never change). Returns the number of frozen parameters.
    """
    check_freeze(policy)
    if policy == "none":
        return 0
    if policy == "frozen":
        modules = [backbone]
    else:
        n, stages = int(FREEZE_RE.match(policy).group(2)), backbone.stages()
        if n > len(stages):
            raise WeightsError(
                f"freeze={policy}: backbone '{getattr(backbone, 'backbone_name', '?')}' has {len(stages)} stages"
            )
        modules = [m for stage in stages[:n] for m in stage]
    frozen = {}
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)
            frozen[id(p)] = p.numel()
        freeze_batch_norm(m)
    return sum(frozen.values())


def freeze_batch_norm(module) -> None:
    """Stop every batch-norm layer of ``module`` from updating its running statistics: it normalises
    by the batch while training and by the stored statistics at evaluation, which never change."""
    from torch import nn

    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.track_running_stats = False
