"""Scenarios v3: the built-in files validate and say what #24 asks of them; the v2 files still reproduce v2."""
from __future__ import annotations

from pathlib import Path

import pytest

from unicon_bench.data.phantoms import PhantomConfig
from unicon_bench.data.streams import cohort_config
from unicon_bench.errors import ConfigError
from unicon_bench.scenario import get_scenario, list_scenarios, load_scenario_file

ROOT = Path(__file__).resolve().parents[1]
BUILT_IN = ("ct_to_pet", "ct_tasks", "ct_sites", "unicon")


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_scenarios_are_v3_with_eval_sets_that_separate_methods(name):
    spec = get_scenario(name)
    assert name in list_scenarios() and spec.version == 3 and spec.data.survival == "imaging"
    for k, exp in enumerate(spec.experiences):
        n_train, n_eval = spec.sizes(k)
        assert n_eval >= (96 if exp.task in ("classification", "prognosis") else 64), (exp.name, n_eval)
        assert not exp.with_ct  # v3: the PET step sees PET alone
    # data scarcity: no later segmentation experience has more training subjects than the first one
    seg = [spec.sizes(k)[0] for k, e in enumerate(spec.experiences) if e.task == "segmentation"]
    assert seg == sorted(seg, reverse=True) and (len(seg) == 1 or seg[-1] < seg[0])


def test_v3_experiences_draw_their_populations():
    pet = get_scenario("ct_to_pet")
    cfg = cohort_config(pet, 0)
    assert (cfg.cohort, cfg.contrast, cfg.survival) == ("staging", "venous", "imaging")
    assert cohort_config(pet, 1).contrast == "none"  # PET alone: no contrast CT
    sites = get_scenario("ct_sites")
    assert [cohort_config(sites, k).cohort for k in range(3)] == ["screening", "staging", "staging"]
    # the quick version keeps the populations, at 16^3
    quick = sites.quick_version()
    assert cohort_config(quick, 0).cohort == "screening" and quick.data.shape == (16, 16, 16)


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_v2_files_still_describe_v2(name):
    spec = load_scenario_file(ROOT / "scenarios" / "v2" / f"{name}.yaml")
    assert spec.version == 2 and spec.name == name
    for k in range(len(spec.experiences)):
        cfg = cohort_config(spec, k)
        assert (cfg.cohort, cfg.survival, cfg.contrast) == ("mixed", "clinical", "none")
        # the v2 cache key: nothing of v3 in it
        assert cfg.key() == PhantomConfig(n=cfg.n, shape=cfg.shape, site=cfg.site, seed=cfg.seed).key()


def test_phantom_options_are_refused_on_real_data(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("subject,split,modality,image\n")
    path = tmp_path / "s.yaml"
    path.write_text(f"""name: real
version: 1
kind: task
description: x
task_identity_at_test: true
experiences:
  - {{name: a, modality: CT, task: segmentation, cohort: staging}}
data: {{source: manifest, manifest: {manifest}}}
""")
    with pytest.raises(ConfigError, match="'cohort' and 'contrast' describe phantoms"):
        load_scenario_file(path)


def test_v2_reference_results_upgrade_and_never_mix_with_v3(tmp_path):
    import json

    from unicon_bench.analysis.aggregate import aggregate
    from unicon_bench.results import parse_result, read_result

    files = sorted((ROOT / "benchmarks" / "results" / "cpu-default-suite").rglob("*.json"))
    path = next(p for p in files if p.name.startswith("s") and json.loads(p.read_text())["schema_version"] == 2)
    raw = json.loads(path.read_text())
    assert "precision" not in raw["env"]
    v2 = read_result(path)
    assert v2.schema_version == 3 and v2.env.precision == "fp32" and v2.scenario.version == 2
    as_v3 = parse_result({**raw, "run_id": raw["run_id"] + "-v3", "scenario": {**raw["scenario"], "version": 3}})
    boards = aggregate([(path, v2), (tmp_path / "x.json", as_v3)])
    assert sorted(b.version for b in boards) == [2, 3] and all(len(b.runs) == 1 for b in boards)
