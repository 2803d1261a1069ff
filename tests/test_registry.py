"""Strategy and scenario registries: names, lazy discovery, loading and clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

import unicon_bench
from unicon_bench.errors import ConfigError, UniconBenchError, UnknownNameError
from unicon_bench.registry import FAMILIES, STRATEGIES

BUILTIN_STRATEGIES = {"naive", "joint", "specialized", "ewc", "replay"}
BUILTIN_SCENARIOS = ["ct_sites", "ct_tasks", "ct_to_pet", "unicon"]


# -- strategies ----------------------------------------------------------------------------------


def test_list_strategies_has_builtins():
    names = unicon_bench.list_strategies()
    assert BUILTIN_STRATEGIES <= set(names)
    assert names == sorted(names)


def test_get_strategy_ewc_has_params_and_compatible():
    cls = unicon_bench.get_strategy("ewc")
    assert isinstance(cls, type)
    assert cls.name == "ewc"
    assert dataclasses.is_dataclass(cls.params)
    fields = {f.name for f in dataclasses.fields(cls.params)}
    assert {"ewc_lambda", "mode", "decay_factor", "epochs", "lr", "batch_size", "weight_decay"} <= fields
    assert set(cls.compatible) == {"domain", "task", "modality"}
    params = cls.params()
    assert params.ewc_lambda == 1000.0 and params.mode == "separate"
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.ewc_lambda = 1.0


@pytest.mark.parametrize("name", unicon_bench.list_strategies())
def test_listing_matches_imported_class(name):
    """``ls`` reads sources with ast; what it reports must match the imported class."""
    entry = STRATEGIES.entry(name)
    cls = unicon_bench.get_strategy(name)
    assert cls.name == name
    assert entry.summary, f"{name} has no one-line description"
    assert entry.summary == cls.__doc__.strip().splitlines()[0]
    assert set(entry.compatible) == set(cls.compatible)
    assert entry.trainable == cls.trainable
    assert entry.family == cls.family
    assert dataclasses.is_dataclass(cls.params)


@pytest.mark.parametrize("name", unicon_bench.list_strategies())
def test_builtin_strategies_declare_a_family(name):
    """Every built-in strategy says which kind of method it is (``ls strategies`` shows it)."""
    assert STRATEGIES.entry(name).family in FAMILIES, name


def test_families_of_the_anchors():
    families = {name: STRATEGIES.entry(name).family for name in unicon_bench.list_strategies()}
    assert {families[n] for n in ("naive", "joint", "specialized")} == {"bound"}
    assert families["ewc"] == "regularisation"
    assert families["replay"] == families["medcoss"] == "rehearsal"
    assert families["unicon"] == "parameter-efficient"


def test_specialized_is_not_domain_compatible():
    assert "domain" not in unicon_bench.get_strategy("specialized").compatible
    assert {"task", "modality"} <= set(unicon_bench.get_strategy("specialized").compatible)


def test_unknown_strategy_lists_available():
    with pytest.raises(UnknownNameError) as info:
        unicon_bench.get_strategy("nope")
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, UniconBenchError)
    assert err.exit_code == 2
    msg = str(err)
    assert "nope" in msg and "available:" in msg
    for name in BUILTIN_STRATEGIES:
        assert name in msg
    assert "\n" not in msg
    assert not msg.startswith(("'", '"'))  # not KeyError's quoted repr


def test_register_strategy_in_process_is_gettable():
    from unicon_bench.strategy import Strategy

    @unicon_bench.register_strategy("in_process_test_strategy")
    class InProcess(Strategy):
        """Registered at runtime."""

    try:
        assert unicon_bench.get_strategy("in_process_test_strategy") is InProcess
    finally:
        STRATEGIES._classes.pop("in_process_test_strategy", None)


# -- scenarios -----------------------------------------------------------------------------------


def test_list_scenarios_is_the_builtins():
    assert unicon_bench.list_scenarios() == BUILTIN_SCENARIOS


@pytest.mark.parametrize("name", BUILTIN_SCENARIOS)
def test_builtin_scenarios_load(name):
    spec = unicon_bench.get_scenario(name)
    assert spec.name == name
    assert spec.version >= 1
    assert len(spec.experiences) >= 2
    assert len({e.name for e in spec.experiences}) == len(spec.experiences)
    if spec.kind == "domain":
        assert spec.task_identity_at_test is False
    quick = spec.quick_version()
    assert quick.data.shape == (16, 16, 16)
    assert quick.train.epochs == spec.quick.epochs
    for i in range(len(quick.experiences)):
        assert quick.sizes(i) == (spec.quick.n_train, spec.quick.n_eval)
    # the full spec is untouched by quick_version
    assert spec.data.shape != (16, 16, 16)


def test_scenario_kinds():
    kinds = {n: unicon_bench.get_scenario(n).kind for n in BUILTIN_SCENARIOS}
    assert kinds == {"ct_sites": "domain", "ct_tasks": "task", "ct_to_pet": "modality", "unicon": "task"}


def test_unknown_scenario_lists_available(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file named 'nope' can be picked up as a path
    with pytest.raises(UnknownNameError) as info:
        unicon_bench.get_scenario("nope")
    msg = str(info.value)
    assert "scenario" in msg and "nope" in msg and "available:" in msg
    for name in BUILTIN_SCENARIOS:
        assert name in msg


def _builtin_raw(name: str) -> dict:
    from importlib import resources

    return yaml.safe_load(resources.files("unicon_bench.scenarios").joinpath(f"{name}.yaml").read_text())


def _write(tmp_path: Path, raw, name: str = "custom.yaml") -> Path:
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_get_scenario_from_yaml_path(tmp_path):
    raw = _builtin_raw("ct_to_pet")
    raw["name"] = "my_stream"
    raw["experiences"].append({"name": "pet_seg_b", "modality": "PET", "task": "segmentation", "site": "B"})
    path = _write(tmp_path, raw)
    for arg in (path, str(path)):
        spec = unicon_bench.get_scenario(arg)
        assert spec.name == "my_stream"
        assert [e.name for e in spec.experiences] == ["ct_seg", "pet_seg", "pet_seg_b"]
        assert spec.experiences[2].site == "B"
        assert spec.train == unicon_bench.get_scenario("ct_to_pet").train


def test_builtin_yaml_copied_to_path_equals_builtin(tmp_path):
    path = _write(tmp_path, _builtin_raw("unicon"))
    assert unicon_bench.get_scenario(path) == unicon_bench.get_scenario("unicon")


def test_malformed_yaml(tmp_path):
    path = _write(tmp_path, "name: x\nexperiences: [ {name: a\n  - :\n")
    with pytest.raises(ConfigError) as info:
        unicon_bench.get_scenario(path)
    msg = str(info.value)
    assert "malformed" in msg and str(path) in msg
    assert "\n" not in msg


def test_missing_yaml_file(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="cannot read"):
        unicon_bench.get_scenario(path)


def test_yaml_not_a_mapping(tmp_path):
    path = _write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        unicon_bench.get_scenario(path)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r.update(kind="banana"), "kind"),
        (lambda r: r.update(unexpected_field=1), "unexpected_field"),
        (lambda r: r.pop("experiences"), "experiences"),
        (lambda r: r.update(experiences=[]), "experiences"),
        (lambda r: r.update(version=0), "version"),
        (lambda r: r["experiences"][0].update(modality="MRI"), "modality"),
        (lambda r: r["experiences"][0].update(task="detection"), "task"),
        (lambda r: r["experiences"][1].update(n_train=0), "n_train"),
        (lambda r: r["data"].update(n_eval=-1), "n_eval"),
        (lambda r: r["train"].update(epochs=0), "epochs"),
    ],
    ids=["bad-kind", "extra-field", "no-experiences", "empty-experiences", "version-0", "bad-modality",
         "bad-task", "zero-n_train", "negative-n_eval", "zero-epochs"],
)
def test_invalid_fields_are_named(tmp_path, mutate, expected):
    raw = _builtin_raw("ct_to_pet")
    mutate(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
        unicon_bench.get_scenario(path)
    msg = str(info.value)
    assert msg.startswith("invalid scenario")
    assert expected in msg
    assert "\n" not in msg


def test_duplicate_experience_names(tmp_path):
    raw = _builtin_raw("ct_to_pet")
    raw["experiences"][1]["name"] = raw["experiences"][0]["name"]
    with pytest.raises(ConfigError) as info:
        unicon_bench.get_scenario(_write(tmp_path, raw))
    msg = str(info.value)
    assert "unique" in msg and "ct_seg" in msg


def test_domain_scenario_with_identity_is_rejected(tmp_path):
    raw = _builtin_raw("ct_sites")
    raw["task_identity_at_test"] = True
    with pytest.raises(ConfigError, match="domain"):
        unicon_bench.get_scenario(_write(tmp_path, raw))


def test_a_missing_builtin_package_is_one_clear_error():
    # a source checkout imported without being installed has no unicon_bench.strategies package
    # (setuptools maps strategies/ into it); that used to be an AttributeError on None
    from unicon_bench.errors import UniconBenchError
    from unicon_bench.registry import Registry

    registry = Registry("strategy", "unicon_bench.not_installed", "unicon_bench.none", "register_strategy")
    with pytest.raises(UniconBenchError, match=r"unicon_bench.not_installed cannot be found.*pip install -e \."):
        registry.names()


# -- the one registry mechanism ------------------------------------------------------------------


def test_one_registry_class_serves_strategies_backbones_and_scenarios():
    from unicon_bench.models.backbones import BACKBONES
    from unicon_bench.registry import Registry
    from unicon_bench.scenario import SCENARIOS

    assert type(STRATEGIES) is type(BACKBONES) is type(SCENARIOS) is Registry
    assert STRATEGIES.entry("naive").target == "unicon_bench.strategies.naive:Naive"
    assert BACKBONES.entry("unet").target == "unicon_bench.models.backbones:_unet"
    assert {"unet", "swin_unetr", "vit", "segresnet", "resnet"} <= set(BACKBONES.names())
    assert SCENARIOS.names() == BUILTIN_SCENARIOS
    assert SCENARIOS.entry("unicon").path.name == "unicon.yaml" and SCENARIOS.entry("unicon").origin == "builtin"
    with pytest.raises(UnknownNameError, match="unknown backbone 'vgg'; available: .*unet"):
        BACKBONES.get("vgg")


def test_builtin_table_names_every_decorated_strategy():
    """``strategies/__init__.py``'s lazy table and the ``@register_strategy`` lines agree."""
    import pkgutil

    import unicon_bench.strategies as package
    from unicon_bench.registry import _scan_module_source

    declared = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = f"unicon_bench.strategies.{info.name}"
        source = (Path(info.module_finder.path) / f"{info.name}.py").read_text(encoding="utf-8")
        for entry in _scan_module_source(source, module, "register_strategy", "builtin"):
            declared[entry.name] = f"{module}:{entry.attr}"
    assert declared == package.BUILTINS


PARENT_MODULE = '''
class Parent:
    compatible = {"task"}
    trainable = "heads only"
'''

CHILD_MODULE = '''
"""Loaded only by ``get``."""
from {parent} import Parent


class Child(Parent):
    """Child strategy: its parent's kinds and trainable policy."""

    family = "bound"
'''


def test_lazy_entry_imports_nothing_until_get(tmp_path, monkeypatch):
    import sys
    import uuid

    from unicon_bench.registry import Registry, describe_strategy

    tag = uuid.uuid4().hex[:8]
    parent, child = f"lazy_parent_{tag}", f"lazy_child_{tag}"
    (tmp_path / f"{parent}.py").write_text(PARENT_MODULE)
    (tmp_path / f"{child}.py").write_text(CHILD_MODULE.format(parent=parent))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("strategy", "unicon_bench.strategies", "unicon_bench.none", "register_strategy",
                        describe=describe_strategy, name_attr="name")
    registry.register_lazy("child", f"{child}:Child")
    try:
        assert "child" in registry.names()
        entry = registry.entry("child")
        assert entry.summary == "Child strategy: its parent's kinds and trainable policy."
        assert entry.compatible == ("task",) and entry.trainable == "heads only" and entry.family == "bound"
        assert child not in sys.modules and parent not in sys.modules
        cls = registry.get("child")
        assert child in sys.modules and cls.__name__ == "Child" and cls.name == "child"
        assert set(cls.compatible) == set(entry.compatible) and cls.trainable == entry.trainable
        assert registry.get("child") is cls
    finally:
        sys.modules.pop(child, None)
        sys.modules.pop(parent, None)


def test_inherited_default_compatible_is_reported():
    """``naive`` does not restate ``compatible``: ``ls`` reports the ``Strategy`` default."""
    from unicon_bench.registry import STRATEGY_DEFAULTS
    from unicon_bench.strategy import Strategy

    source = Path(unicon_bench.strategies.__file__).with_name("naive.py").read_text(encoding="utf-8")
    assert "compatible" not in source
    default = tuple(sorted(STRATEGY_DEFAULTS["compatible"]))
    assert STRATEGIES.entry("naive").compatible == default
    assert tuple(sorted(Strategy.compatible)) == default and Strategy.trainable == STRATEGY_DEFAULTS["trainable"]
    for name in ("naive", "unicon", "inflora"):  # unicon and inflora inherit through FoundationStrategy
        assert STRATEGIES.entry(name).compatible == tuple(sorted(unicon_bench.get_strategy(name).compatible))
    assert STRATEGIES.entry("packnet").compatible == ("modality", "task")


def test_backbone_entry_point_is_found(tmp_path, monkeypatch):
    """A package that declares ``unicon_bench.backbones`` entry points adds backbones; built-ins win."""
    import sys

    from unicon_bench.models.backbones import BACKBONES, backbone_options, build_backbone, list_backbones

    dist = tmp_path / "fake_backbone-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-backbone\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[unicon_bench.backbones]\ntiny_unet = fake_backbone_mod:tiny_unet\nunet = fake_backbone_mod:tiny_unet\n")
    (tmp_path / "fake_backbone_mod.py").write_text(
        "from unicon_bench.models.backbones import build_backbone\n\n\n"
        "def tiny_unet(shape=None, channels=(8, 16, 32, 64)):\n"
        '    """A U-Net with fewer channels, from a plugin."""\n'
        '    return build_backbone("unet", shape, {"channels": channels})\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    BACKBONES.refresh()
    try:
        assert "tiny_unet" in list_backbones()
        assert BACKBONES.entry("tiny_unet").origin == "plugin (fake-backbone)"
        assert BACKBONES.entry("unet").origin == "builtin"
        assert "fake_backbone_mod" not in sys.modules
        assert backbone_options("tiny_unet") == {"channels": (8, 16, 32, 64)}
        net = build_backbone("tiny_unet", (16, 16, 16), {"channels": (4, 8, 16, 32)})
        assert net.backbone_name == "tiny_unet" and tuple(net.channels) == (4, 8, 16, 32)
    finally:
        BACKBONES.refresh()
        BACKBONES._objects.pop("tiny_unet", None)
        sys.modules.pop("fake_backbone_mod", None)


def test_ls_strategies_imports_no_torch():
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from unicon_bench.cli import main\n"
        "sys.argv = ['unicon-bench', 'ls', 'strategies']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'avalanche', 'monai')\n"
        "         or m.startswith('unicon_bench.strategies.')]\n"
        "print('HEAVY', sorted(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "naive" in proc.stdout and "packnet" in proc.stdout
    assert "HEAVY []" in proc.stdout
