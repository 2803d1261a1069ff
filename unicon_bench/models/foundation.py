"""The foundation model of a run: which backbone, which pretrained weights, what is frozen.

Every strategy's parameters carry ``backbone``, ``backbone_options``, ``backbone_weights``,
``weights_map``, ``weights_ignore`` and ``freeze`` (``unicon_bench.strategy.BaseParams``).
``Foundation.prepare`` applies them to a freshly built model:

- ``backbone_weights`` = a state dict / safetensors file / MONAI bundle folder: its tensors
  (after ``weights_map``) are loaded into the backbone before anything runs, so the untrained row
  of the matrix is the foundation model with untrained heads;
- ``backbone_weights`` = a folder written by ``unicon-bench pretrain``: the stage-0 model (backbone,
  the first experience's stem and head) replaces training on the first experience, so every
  strategy of a sweep starts from the same stage 0 instead of each re-training it;
- ``freeze`` (``none`` | ``frozen`` | ``partial:N``) freezes the backbone or its first N stages.

What was loaded (the file's SHA-256) and what was frozen goes into the result's cost section.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unicon_bench.errors import ConfigError
from unicon_bench.fileio import load_yaml
from unicon_bench.models.weights import (
    WeightsError,
    apply_freeze,
    load_weights,
    map_keys,
    read_state_dict,
    sha256_file,
    weights_file,
)

PRETRAIN_FORMAT = "unicon-bench-pretrain"
PRETRAIN_META = "pretrain.yaml"  # not .json: result folders are scanned for *.json
PRETRAIN_WEIGHTS = "foundation.pt"


def parse_options(text: str | dict | None) -> dict[str, Any]:
    """``backbone_options`` as a mapping: YAML text like ``{feature_size: 48}`` (or a mapping)."""
    if not text:
        return {}
    if isinstance(text, dict):
        return dict(text)
    try:
        value = load_yaml(text, "not YAML")
    except ConfigError as exc:
        raise ConfigError(f"backbone_options must be a YAML mapping like '{{feature_size: 48}}' ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"backbone_options must be a YAML mapping like '{{feature_size: 48}}', got {text!r}")
    return value


def is_pretrain_dir(path: str | Path | None) -> bool:
    return path is not None and (Path(path).expanduser() / PRETRAIN_META).is_file()


def read_pretrain_meta(path: str | Path) -> dict:
    p = Path(path).expanduser() / PRETRAIN_META
    try:
        meta = load_yaml(p.read_text(encoding="utf-8"), f"backbone_weights: cannot read {p}", WeightsError)
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"backbone_weights: cannot read {p}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != PRETRAIN_FORMAT:
        raise WeightsError(f"backbone_weights: {p} is not a unicon-bench pretrain checkpoint")
    return meta


def check_params(params) -> None:
    """Validate the foundation parameters without building anything (called by BaseParams);
    ``backbone_options`` is rewritten in its canonical form."""
    from unicon_bench.models.backbones import backbone_options
    from unicon_bench.models.weights import check_freeze, parse_rules

    options = parse_options(params.backbone_options)
    defaults = backbone_options(params.backbone, {})
    backbone_options(params.backbone, options)
    for key, value in options.items():
        _check_option(params.backbone, key, value, defaults[key])
    if options:  # one spelling of the same options (JSON is YAML): results and sweeps compare it
        object.__setattr__(params, "backbone_options", json.dumps(options, sort_keys=True))
    parse_rules(params.weights_map)
    check_freeze(params.freeze)
    if params.backbone_weights is not None and not Path(params.backbone_weights).expanduser().exists():
        raise WeightsError(f"backbone_weights: no such file or folder: {params.backbone_weights}")


MAX_OPTION = 4096  # channels, widths, depths and heads: beyond this a 3D network outgrows any GPU


def _check_option(backbone: str, key: str, value: Any, default: Any) -> None:
    """An option has its default's type: a count (1..MAX_OPTION; 0 too where the default is 0), a list of
    counts, a finite number, a flag or a name; options with other defaults (plugins') are not checked."""
    lo = 0 if isinstance(default, int) and default == 0 else 1

    def count(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= MAX_OPTION

    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = count(value), f"an integer from {lo} to {MAX_OPTION}"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        want = "a finite number"
    elif isinstance(default, (tuple, list)) and default and all(count(v) for v in default):
        ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(count(v) for v in value)
        want = f"a list of integers from 1 to {MAX_OPTION}"
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "a name"
    else:
        return
    if not ok:
        raise ConfigError(f"backbone '{backbone}' option {key} must be {want}, got {value!r}")


def build_backbone(params, spec):
    """The backbone named by ``params`` for the volumes (and training patches) of scenario ``spec``."""
    from unicon_bench.models.backbones import BackboneError, check_shape
    from unicon_bench.models.backbones import build_backbone as build

    shape, patch = tuple(spec.data.shape), getattr(spec.data, "patch", None)
    net = build(params.backbone, shape, parse_options(params.backbone_options))
    if patch is not None and tuple(patch) != shape:
        if params.backbone == "vit":  # learned position embeddings fit one input size
            raise BackboneError(f"backbone 'vit' takes one input size, but the scenario trains on {tuple(patch)} "
                                f"patches of {shape} volumes; drop `patch` or choose another backbone")
        check_shape(net, tuple(patch))
    return net


@dataclass
class Foundation:
    """What ``prepare`` did to a model, and the stage-0 state still to load (pretrain folders)."""

    weights: str | None = None
    sha256: str | None = None
    kind: str | None = None
    report: list[str] = field(default_factory=list)
    freeze: str = "none"
    frozen_params: int = 0
    stage0: dict | None = None

    @classmethod
    def prepare(cls, model, params, spec) -> "Foundation":
        """Load ``params.backbone_weights`` into ``model.encoder`` (or keep a stage 0 for later), freeze."""
        f = cls(freeze=params.freeze)
        path = params.backbone_weights
        if not hasattr(model, "encoder"):  # strategies with a network of their own (packnet, l2p)
            if path is not None or params.freeze != "none" or params.backbone != "unet":
                raise ConfigError(f"{type(model).__name__} builds its own network: backbone, backbone_weights "
                                  "and freeze do not apply to this strategy")
            return f
        if path is not None:
            if is_pretrain_dir(path):
                f._read_pretrain(Path(path).expanduser(), params, spec)
            else:
                file = weights_file(path)
                f.weights, f.sha256 = str(path), sha256_file(file)
                f.kind = "safetensors" if file.suffix == ".safetensors" else (
                    "monai_bundle" if Path(path).expanduser().is_dir() else "state_dict")
                state = map_keys(read_state_dict(path), params.weights_map)
                f.report = load_weights(model.encoder, state, params.weights_ignore, f"backbone_weights {path}").lines()
        f.frozen_params = apply_freeze(model.encoder, params.freeze)
        return f

    def _read_pretrain(self, path: Path, params, spec) -> None:
        meta = read_pretrain_meta(path)
        want = {
            "scenario": spec.name, "scenario_version": spec.version, "shape": list(spec.data.shape),
            "experience": spec.experiences[0].name, "backbone": params.backbone,
            "backbone_options": parse_options(params.backbone_options),
        }
        got = {k: meta.get(k) for k in want}
        got["backbone_options"] = parse_options(got["backbone_options"])
        diff = [f"{k} {got[k]!r} (this run: {want[k]!r})" for k in want if json.dumps(got[k]) != json.dumps(want[k])]
        if diff:
            raise WeightsError(f"pretrain checkpoint {path} was made for another set-up: " + "; ".join(diff))
        file = path / PRETRAIN_WEIGHTS
        self.weights, self.sha256, self.kind = str(path), sha256_file(file), "pretrain"
        if meta.get("sha256") not in (None, self.sha256):
            raise WeightsError(f"pretrain checkpoint {path}: {PRETRAIN_WEIGHTS} is not the file {PRETRAIN_META} describes "
                               "(its SHA-256 differs); run `unicon-bench pretrain` again")
        self.stage0 = read_state_dict(file)
        self.report = [f"stage 0 from {path} ({meta.get('strategy', 'unicon')} on {meta['experience']}, seed {meta.get('seed')})"]

    def load_stage0(self, model, route: int = 0) -> None:
        """Put the pretrained stage 0 (backbone, stem and head of ``route``) into ``model``."""
        r = model.routes[route]
        for prefix, module in (("encoder.", model.encoder), ("stem.", model.stems[r.stem]), ("head.", model.heads[r.head])):
            part = {k[len(prefix):]: v for k, v in self.stage0.items() if k.startswith(prefix)}
            load_weights(module, part, source=f"pretrain checkpoint {self.weights} ({prefix[:-1]})")

    def cost_fields(self) -> dict[str, Any]:
        """Optional fields of the result's cost section."""
        return {
            "backbone_weights": self.weights,
            "weights_sha256": self.sha256,
            "weights_kind": self.kind,
            "weights_report": self.report or None,
            "frozen": self.freeze,
            "frozen_params": self.frozen_params,
        }


def stage0_state(model, route: int = 0) -> dict:
    """The stage-0 model as one flat state dict: ``encoder.*``, ``stem.*`` and ``head.*``."""
    r = model.routes[route]
    out = {}
    for prefix, module in (("encoder.", model.encoder), ("stem.", model.stems[r.stem]), ("head.", model.heads[r.head])):
        out.update({prefix + k: v.detach().cpu().clone() for k, v in module.state_dict().items()})
    return out
