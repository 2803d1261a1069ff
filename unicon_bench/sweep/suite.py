"""Suites: run the cross product strategies x scenarios x seeds listed in a YAML file.

A suite file looks like::

    name: default
    strategies: all            # or a list of names
    scenarios: [ct_to_pet]     # or "all"
    seeds: [0, 1, 2]           # or a count: 3 means seeds 0, 1, 2
    quick: false
    out: results/              # relative to the working directory
    params:                    # optional, per strategy
      replay: {mem_size: 50}
    pretrain: true             # optional: train stage 0 once per scenario, every strategy reuses it
                               # (or a mapping: {seed: 0, backbone: swin_unetr, epochs: 20, ...})
    precision: auto            # optional: auto (bf16 on CUDA, fp32 on the CPU), fp32 or bf16

Sweeps are resumable: a run interrupted mid-way continues from its last checkpoint (see
``unicon_bench.harness.checkpoint``), and a run is skipped when ``<out>/<scenario>/<strategy>/`` already holds a valid
result with the same scenario name and version, strategy name, seed, quick flag, parameters and precision.
Incompatible strategy x scenario pairs are listed as skipped, not failed; a failing run is recorded
and the others still run.

With ``pretrain``, stage 0 of each scenario (``unicon_bench.harness.pretrain``) is trained once into
``<out>/pretrain/<scenario>[-quick]/`` (kept and reused by a resumed sweep) and every strategy gets
``backbone_weights`` = that folder (and the pretrain's ``backbone``/``backbone_options``), so no run
trains the first experience itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from unicon_bench import harness
from unicon_bench.errors import ConfigError, IncompatibleError, UniconBenchError
from unicon_bench.fileio import Int, read_yaml_mapping, validate
from unicon_bench.harness.request import check_params, check_seed, recorded_params, resolve_precision
from unicon_bench.registry import list_strategies
from unicon_bench.results import ResultError, read_result
from unicon_bench.scenario import list_scenarios


MAX_SEEDS = 10_000  # a seed count beyond this is a typo, not a sweep


class Suite(BaseModel):
    """A validated suite file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    strategies: list[str] | Literal["all"] = Field(min_length=1)
    scenarios: list[str] | Literal["all"] = Field(min_length=1)
    seeds: list[Int] | Int = Field(description="a list of seeds, or a count N meaning seeds 0..N-1")
    quick: bool = False
    out: str = "results"
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pretrain: bool | dict[str, Any] = Field(False, description="train stage 0 once per scenario and share it")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="arithmetic of every run (auto: by device)")

    @field_validator("seeds", "params", "pretrain")
    @classmethod
    def _values(cls, value: Any, info: ValidationInfo) -> Any:
        """Seeds in range; known strategies' known parameters (and stage 0's) coerced and checked as a run
        would, at load (unknown names and keys are reported by ``load_suite`` and ``plan``)."""
        try:
            if info.field_name == "seeds":
                for seed in value if isinstance(value, list) else []:
                    check_seed(seed, "each seed")
            elif info.field_name == "params":
                for name, values in value.items():
                    if name in list_strategies():
                        check_params(name, values)
            elif isinstance(value, dict):
                from unicon_bench.harness.pretrain import STAGE0_KEYS, STRATEGY

                check_seed(value.get("seed", 0), "pretrain seed")
                check_params(STRATEGY, {k: v for k, v in value.items() if k in STAGE0_KEYS})
        except UniconBenchError as exc:
            raise ValueError(str(exc)) from None
        return value

    def pretrain_params(self) -> dict[str, Any] | None:
        """Stage-0 parameters (``seed`` taken out), or None without ``pretrain``."""
        if self.pretrain is False:
            return None
        return {k: v for k, v in (self.pretrain if isinstance(self.pretrain, dict) else {}).items() if k != "seed"}

    def pretrain_seed(self) -> int:
        return int(self.pretrain.get("seed", 0)) if isinstance(self.pretrain, dict) else 0

    def strategy_names(self) -> list[str]:
        return list_strategies() if self.strategies == "all" else list(self.strategies)

    def scenario_names(self) -> list[str]:
        return list_scenarios() if self.scenarios == "all" else list(self.scenarios)

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


def load_suite(path: str | Path) -> Suite:
    """Parse and validate a suite YAML file; any problem is one ``ConfigError``."""
    raw = read_yaml_mapping(path, "suite", " (name, strategies, scenarios, seeds, ...)")
    suite = validate(Suite, raw, f"invalid suite {path}")
    if isinstance(suite.seeds, int) and suite.seeds > MAX_SEEDS:
        raise ConfigError(f"invalid suite {path}: seeds: a count of at most {MAX_SEEDS}, got {suite.seeds}")
    seeds = suite.seed_list()
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"invalid suite {path}: seeds must be distinct non-negative integers (or a positive count)")
    for kind, names, known in (
        ("strategy", suite.strategy_names(), list_strategies()),
        ("scenario", suite.scenario_names(), list_scenarios()),
    ):
        for name in names:
            if name not in known and not (kind == "scenario" and name.endswith((".yaml", ".yml"))):
                raise ConfigError(f"invalid suite {path}: unknown {kind} '{name}'; available: {', '.join(known)}")
    extra = sorted(set(suite.params) - set(suite.strategy_names()))
    if extra:
        raise ConfigError(f"invalid suite {path}: params given for strategies not in the suite: {', '.join(extra)}")
    if suite.pretrain_params() is not None:
        from unicon_bench.harness.pretrain import STAGE0_KEYS

        bad = sorted(set(suite.pretrain_params()) - set(STAGE0_KEYS))
        clash = sorted(s for s, p in suite.params.items() if "backbone_weights" in p)
        if bad:
            raise ConfigError(f"invalid suite {path}: pretrain: unknown key(s) {', '.join(bad)}; known: seed, {', '.join(STAGE0_KEYS)}")
        if clash:
            raise ConfigError(f"invalid suite {path}: pretrain gives every strategy its backbone_weights; "
                              f"remove backbone_weights from the params of {', '.join(clash)}")
    return suite


def pretrain_folder(out: str | Path, scenario: str, quick: bool, precision: str = "fp32") -> Path:
    """``OUT/pretrain/<scenario>[-quick][-bf16]``: a stage 0 per precision, fp32's where it always was."""
    from unicon_bench.scenario import get_scenario

    suffix = ("-quick" if quick else "") + ("" if precision == "fp32" else f"-{precision}")
    return Path(out) / "pretrain" / (get_scenario(scenario).name + suffix)


def ensure_pretrained(suite: Suite, out: str | Path, device: str = "cpu", cache_dir=None, console=None,
                      precision: str | None = None) -> dict[str, Path]:
    """Per scenario, the stage-0 checkpoint folder of a ``pretrain`` suite (trained unless reusable), in the
    suite's precision unless ``precision`` overrides it."""
    from unicon_bench.harness.pretrain import pretrain, reusable

    precision = resolve_precision(precision or suite.precision, device)
    folders = {}
    for scenario in suite.scenario_names():
        folder = pretrain_folder(out, scenario, suite.quick, precision)
        params, seed = suite.pretrain_params(), suite.pretrain_seed()
        if not reusable(folder, scenario, suite.quick, seed, params, precision):
            if console is not None:
                console.print(f"pretraining stage 0 of {scenario} (seed {seed}, {precision}) into {folder}")
            pretrain(scenario, folder, seed=seed, quick=suite.quick, device=device, overrides=params, cache_dir=cache_dir,
                     precision=precision)
        folders[scenario] = folder
    return folders


def _overrides(suite: Suite, strategy: str, scenario: str, out: Path, precision: str) -> dict[str, Any]:
    """A strategy's parameters in the suite, plus the shared stage 0 of a ``pretrain`` suite."""
    overrides = dict(suite.params.get(strategy, {}))
    stage0 = suite.pretrain_params()
    if stage0 is not None:
        overrides["backbone_weights"] = str(pretrain_folder(out, scenario, suite.quick, precision))
        for key in ("backbone", "backbone_options"):
            if key in stage0:
                overrides[key] = stage0[key]
    return overrides


@dataclass(frozen=True)
class PlannedRun:
    strategy: str
    scenario: str
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict, compare=False)

    def label(self) -> str:
        return f"{self.strategy} on {self.scenario}, seed {self.seed}"


@dataclass
class SweepReport:
    """What a sweep did; ``failed`` holds ``(run, one-line error, traceback)``."""

    suite: str
    out: Path
    completed: list[tuple[PlannedRun, Path]] = field(default_factory=list)
    existing: list[tuple[PlannedRun, Path]] = field(default_factory=list)
    incompatible: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str, str]] = field(default_factory=list)
    todo: list[PlannedRun] = field(default_factory=list)
    resumed: list[tuple[PlannedRun, int]] = field(default_factory=list)  # (run, experiences it resumed after)
    elsewhere: list[PlannedRun] = field(default_factory=list)  # claimed or finished by another sweep meanwhile
    precision: str = "fp32"  # of every run of the sweep, resolved for its device

    @property
    def ok(self) -> bool:
        return not self.failed


def _normalised(params: dict) -> Any:
    """Parameters as they read back from a result JSON (tuples become lists, ...)."""
    return json.loads(json.dumps(params))


def find_existing(out: Path, spec, strategy: str, quick: bool, params: dict, precision: str) -> dict[int, Path]:
    """Per seed, the first valid result of exactly this run in ``out`` (each file read once); a result of
    another precision is another run."""
    folder = Path(out) / spec.name / strategy
    if not folder.is_dir():
        return {}
    wanted = _normalised(params)
    found: dict[int, Path] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            r = read_result(path)
        except ResultError:
            continue
        if (
            r.scenario.name == spec.name
            and r.scenario.version == spec.version
            and r.strategy.name == strategy
            and r.scenario.quick == quick
            and r.env.precision == precision
            and _normalised(r.strategy.params) == wanted
        ):
            found.setdefault(r.seed, path)
    return found


def plan(suite: Suite, out: str | Path | None = None, device: str = "cpu", precision: str | None = None) -> SweepReport:
    """Resolve every pair (names, compatibility, parameters) and find the runs already done.

    ``precision`` (fp32, bf16, auto) overrides the suite's; ``report.precision`` is the one resolved for ``device``.

    Raises ``ConfigError`` for parameters that do not fit a strategy: the suite itself is wrong.
    """
    out_dir = Path(out if out is not None else suite.out)
    report = SweepReport(suite=suite.name, out=out_dir,
                         precision=resolve_precision(precision or suite.precision, device))
    for scenario in suite.scenario_names():
        for strategy in suite.strategy_names():
            overrides = _overrides(suite, strategy, scenario, out_dir, report.precision)
            try:
                request = harness.resolve(strategy, scenario, suite.quick, None, overrides, device=device,
                                          precision=report.precision)
                spec, params = request.spec, request.params
            except IncompatibleError as exc:
                report.incompatible.append((strategy, scenario, str(exc)))
                continue
            except UniconBenchError as exc:
                raise ConfigError(f"suite '{suite.name}': {strategy} on {scenario}: {exc}") from None
            existing = find_existing(out_dir, spec, strategy, suite.quick, recorded_params(params), request.precision)
            for seed in suite.seed_list():
                run = PlannedRun(strategy, scenario, seed, overrides)
                done = existing.get(seed)
                if done is not None:
                    report.existing.append((run, done))
                else:
                    report.todo.append(run)
    return report
