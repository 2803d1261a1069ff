"""Tests for the synthetic CT/PET phantoms: determinism, physics ranges, labels, cache."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from unicon_bench.data import _anatomy, phantoms
from unicon_bench.data.phantoms import SITES, PhantomConfig, generate, load_cohort

SHAPE = (16, 16, 16)
SMOKING_WORDS = ("never smoker", "former smoker", "current smoker")


@pytest.fixture(scope="module")
def cohort():
    return generate(PhantomConfig(n=200, shape=SHAPE, site="A", seed=3))


def _labels(cfg: PhantomConfig, k: int) -> np.ndarray:
    subj, _, _ = phantoms._subject(cfg, k)
    return _anatomy.render(subj, cfg.shape, np.random.default_rng(0))[3]


def _fields(c):
    return [c.ct, c.pet, c.mask, c.malignant, c.time, c.event, c.age, c.smoking,
            c.lesion_volume_ml]


def test_generate_is_deterministic_and_seed_dependent():
    a = generate(PhantomConfig(n=4, shape=SHAPE, seed=1))
    b = generate(PhantomConfig(n=4, shape=SHAPE, seed=1))
    for x, y in zip(_fields(a), _fields(b)):
        assert x.tobytes() == y.tobytes()
    assert a.reports == b.reports
    c = generate(PhantomConfig(n=4, shape=SHAPE, seed=2))
    assert not np.array_equal(a.ct, c.ct)


def test_cohorts_of_different_size_share_a_prefix():
    small = generate(PhantomConfig(n=2, shape=SHAPE, seed=5))
    big = generate(PhantomConfig(n=4, shape=SHAPE, seed=5))
    for x, y in zip(_fields(small), _fields(big)):
        np.testing.assert_array_equal(x, y[:2])
    assert small.reports == big.reports[:2]


def test_key_and_arrays_are_stable_across_processes():
    cfg = PhantomConfig(n=2, shape=SHAPE, site="B", seed=7)
    here = generate(cfg)
    digest = hashlib.sha256(here.ct.tobytes() + here.pet.tobytes()).hexdigest()
    code = ("import hashlib; from unicon_bench.data.phantoms import *; "
            "cfg = PhantomConfig(n=2, shape=(16, 16, 16), site='B', seed=7); c = generate(cfg); "
            "print(cfg.key(), hashlib.sha256(c.ct.tobytes() + c.pet.tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [cfg.key(), digest]
    assert len(cfg.key()) == 64
    assert cfg.key() != PhantomConfig(n=2, shape=SHAPE, site="B", seed=8).key()
    assert cfg.key() == PhantomConfig(n=2, shape=[16, 16, 16], site="B", seed=7).key()


def test_shapes_dtypes_and_subset():
    c = generate(PhantomConfig(n=3, shape=(16, 20, 24), site="C"))
    assert len(c) == 3
    for name, dtype in [("ct", np.float32), ("pet", np.float32), ("mask", np.uint8)]:
        arr = getattr(c, name)
        assert arr.shape == (3, 16, 20, 24) and arr.dtype == dtype
    for name, dtype in [("malignant", np.int64), ("event", np.int64), ("smoking", np.int64),
                        ("time", np.float32), ("age", np.float32),
                        ("lesion_volume_ml", np.float32)]:
        assert getattr(c, name).shape == (3,) and getattr(c, name).dtype == dtype
    assert len(c.reports) == 3 and len(c.spacing_mm) == 3
    assert np.all(c.time > 0) and np.all(c.pet >= 0) and set(np.unique(c.mask)) <= {0, 1}
    sub = c.subset([2, 0])
    assert len(sub) == 2 and sub.reports == [c.reports[2], c.reports[0]]
    np.testing.assert_array_equal(sub.ct[0], c.ct[2])
    assert len(c.subset(np.array([True, False, True]))) == 2 and len(c.subset(1)) == 1


@pytest.mark.parametrize("n", [16, 32, 64])
def test_every_supported_shape_is_the_same_anatomy(n):
    c = generate(PhantomConfig(n=1, shape=(n, n, n), seed=11))
    ref = generate(PhantomConfig(n=1, shape=SHAPE, seed=11))
    assert c.reports == ref.reports and c.time[0] == ref.time[0]
    assert c.spacing_mm == pytest.approx((256.0 / n,) * 3)


def test_invalid_configs_are_rejected():
    with pytest.raises(ValueError):
        PhantomConfig(n=2, site="Z")
    with pytest.raises(ValueError):
        PhantomConfig(n=0)
    with pytest.raises(ValueError):
        PhantomConfig(n=2, shape=(4, 16, 16))


def test_hounsfield_units_of_tissues(cohort):
    cfg, L = cohort.config, _anatomy.LABELS
    vals = {k: [] for k in ("lung", "soft", "bone", "lesion_lung", "lesion_soft")}
    for k in range(30):
        lab = _labels(cfg, k)
        for name, found in vals.items():
            if (lab == L[name]).any():
                found.append(cohort.ct[k][lab == L[name]])
    mean = {k: float(np.concatenate(v).mean()) for k, v in vals.items()}
    assert mean["lung"] < -600
    assert 0 < mean["soft"] < 80
    assert mean["bone"] > 200
    assert 0 < mean["lesion_lung"] < 80
    assert abs(mean["lesion_soft"] - mean["soft"]) < 30  # nearly invisible against soft tissue
    air = cohort.ct[:, :, 0, 0]
    assert abs(float(air.mean()) + 1000) < 5


def test_pet_uptake_malignant_hotter_than_benign_and_hot_organs_exist(cohort):
    has = cohort.mask.reshape(len(cohort), -1).any(1)
    peak = np.array([cohort.pet[k][cohort.mask[k] > 0].max() if has[k] else 0.0
                     for k in range(len(cohort))])
    assert peak[(cohort.malignant == 1)].mean() > peak[(cohort.malignant == 0) & has].mean() + 1.0
    cfg, L = cohort.config, _anatomy.LABELS
    heart = [cohort.pet[k][_labels(cfg, k) == L["myocardium"]].max() for k in range(10)]
    liver = [cohort.pet[k][_labels(cfg, k) == L["liver"]].mean() for k in range(10)]
    assert np.median(heart) > 4.0 and 1.5 < np.mean(liver) < 3.5


def test_labels_survival_and_ehr(cohort):
    censored = 1 - cohort.event.mean()
    assert 0.15 <= censored <= 0.45
    has = cohort.lesion_volume_ml > 0
    assert 0.05 <= 1 - has.mean() <= 0.3
    assert not cohort.malignant[~has].any()
    mal, ben = cohort.malignant == 1, (cohort.malignant == 0) & has
    assert cohort.lesion_volume_ml[mal].mean() > cohort.lesion_volume_ml[ben].mean()
    assert 0.2 < mal.mean() < 0.6
    assert 50 < cohort.age.mean() < 80 and set(np.unique(cohort.smoking)) == {0, 1, 2}
    # Smoking raises malignancy; malignancy shortens survival among observed deaths.
    assert cohort.malignant[cohort.smoking == 2].mean() > cohort.malignant[cohort.smoking == 0].mean()
    dead = cohort.event == 1
    assert np.median(cohort.time[dead & mal]) < np.median(cohort.time[dead & ~mal])


def test_reports_mention_age_smoking_and_findings(cohort):
    for k in range(len(cohort)):
        report = cohort.reports[k]
        assert str(int(cohort.age[k])) in report
        assert SMOKING_WORDS[cohort.smoking[k]] in report
        assert sum(w in report for w in SMOKING_WORDS) == 1
    assert len(set(cohort.reports)) == len(cohort)
    no_lesion = np.flatnonzero(cohort.lesion_volume_ml == 0)
    assert all("nodule" in cohort.reports[k].lower() for k in no_lesion)


def test_sites_shift_intensities():
    cohorts = {s: generate(PhantomConfig(n=4, shape=SHAPE, site=s, seed=0)) for s in SITES}
    air = {s: c.ct[:, :, 0, :2] for s, c in cohorts.items()}
    assert abs(air["A"].mean() + 1000) < 5
    assert air["B"].mean() < -1010 and air["C"].mean() > -960
    assert air["B"].std() > 2 * air["A"].std()
    pet_bg = {s: c.pet[:, :, 0, :2].mean() for s, c in cohorts.items()}
    assert all(v < 0.2 for v in pet_bg.values())


def test_load_cohort_caches_and_recovers_from_corruption(tmp_path, monkeypatch):
    cfg = PhantomConfig(n=2, shape=SHAPE, seed=9)
    first = load_cohort(cfg, tmp_path)
    path = tmp_path / f"{cfg.key()}.npz"
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == [path.name]

    def boom(_cfg):
        raise AssertionError("cache was not used")

    monkeypatch.setattr(phantoms, "generate", boom)
    second = load_cohort(cfg, tmp_path)
    for x, y in zip(_fields(first), _fields(second)):
        np.testing.assert_array_equal(x, y)
    assert second.reports == first.reports and second.spacing_mm == first.spacing_mm
    monkeypatch.undo()

    path.write_bytes(b"not a zip file")
    third = load_cohort(cfg, tmp_path)
    np.testing.assert_array_equal(third.ct, first.ct)
    assert np.load(path, allow_pickle=False)["ct"].shape == first.ct.shape


def test_default_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("UNICON_BENCH_CACHE", str(tmp_path))
    assert phantoms.default_cache_dir() == tmp_path
    monkeypatch.delenv("UNICON_BENCH_CACHE")
    assert phantoms.default_cache_dir().name == "phantoms"
