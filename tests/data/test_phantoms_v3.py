"""Phantom v3: the cohort populations (screening, staging) and the imaging survival model.

Checked: v2 configurations keep their key and subjects; v3 generation is deterministic (also across
processes) and cached under its own key; each population shows what it claims (every staging subject has
a lesion, screening finds ground-glass nodules, faint on CT and on PET); the imaging hazard is what the
scan shows (the oracle C-index of the true risk, against a hand-written Harrell's C, is far from chance).
"""
from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import kendalltau

from unicon_bench.data import _anatomy, phantoms
from unicon_bench.data.phantoms import COHORTS, PhantomConfig, generate, load_cohort

SHAPE = (16, 16, 16)


def _digest(c) -> str:
    h = hashlib.sha256()
    for name in ("ct", "pet", "mask", "malignant", "time", "event"):
        h.update(np.ascontiguousarray(getattr(c, name)).tobytes())
    h.update("".join(c.reports).encode())
    return h.hexdigest()


def test_v2_configs_keep_their_key_and_v3_configs_get_their_own():
    v2 = PhantomConfig(n=3, seed=4)
    assert v2 == PhantomConfig(n=3, seed=4, cohort="mixed", survival="clinical")
    keys = {PhantomConfig(n=3, seed=4, cohort=c, survival=s).key() for c in COHORTS for s in phantoms.SURVIVAL_MODELS}
    assert len(keys) == len(COHORTS) * len(phantoms.SURVIVAL_MODELS)
    # the v2 key does not name the v3 fields: caches and recorded keys of v2 stay valid
    assert v2.key() == hashlib.sha256(phantoms.json.dumps(
        {"n": 3, "shape": [32, 32, 32], "site": "A", "seed": 4, "profile": phantoms.asdict(phantoms.SITES["A"]),
         "version": 2}, sort_keys=True).encode()).hexdigest()


def test_unknown_cohort_or_survival_model_is_refused():
    with pytest.raises(ValueError, match="unknown cohort 'oncology'"):
        PhantomConfig(n=2, cohort="oncology")
    with pytest.raises(ValueError, match="unknown survival model"):
        PhantomConfig(n=2, survival="genomic")


@pytest.mark.parametrize("cohort", ["screening", "staging"])
def test_v3_generation_is_deterministic_across_processes(cohort):
    cfg = PhantomConfig(n=3, shape=SHAPE, site="B", seed=11, cohort=cohort, survival="imaging")
    here = _digest(generate(cfg))
    assert _digest(generate(cfg)) == here
    code = ("import sys; sys.path.insert(0, %r); from test_phantoms_v3 import _digest; "
            "from unicon_bench.data.phantoms import PhantomConfig, generate; "
            "print(_digest(generate(PhantomConfig(n=3, shape=(16, 16, 16), site='B', seed=11, cohort=%r, "
            "survival='imaging'))))" % (str(__import__("pathlib").Path(__file__).parent), cohort))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here
    assert here != _digest(generate(PhantomConfig(n=3, shape=SHAPE, site="B", seed=11)))


def test_v3_cohort_is_cached_under_its_key(tmp_path, monkeypatch):
    cfg = PhantomConfig(n=2, shape=SHAPE, seed=9, cohort="staging", survival="imaging")
    first = load_cohort(cfg, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"{cfg.key()}.npz"]
    monkeypatch.setattr(phantoms, "generate", lambda _cfg: pytest.fail("the cache was not used"))
    assert _digest(load_cohort(cfg, tmp_path)) == _digest(first)


def _subjects(cohort: str, survival: str = "imaging", n: int = 400):
    cfg = PhantomConfig(n=n, seed=1, cohort=cohort, survival=survival)
    return [phantoms._subject(cfg, k) for k in range(n)]


def test_staging_subjects_have_a_primary_lung_tumour_and_often_spread():
    rows = _subjects("staging")
    assert all(subj.lesions and subj.lesions[0].site == "lung" and subj.lesions[0].malignant and ehr["malignant"]
               for subj, ehr, _ in rows)
    spread = np.mean([any(les.site != "lung" for les in subj.lesions) for subj, _, _ in rows])
    further = [les for subj, _, _ in rows for les in subj.lesions[1:]]
    assert 0.12 < spread < 0.35 and 0.55 < np.mean([les.malignant for les in further]) < 0.9
    mixed = [ehr["malignant"] for _, ehr, _ in _subjects("mixed", "clinical")]
    assert 0.3 < np.mean(mixed) < 0.5


def test_screening_finds_ground_glass_nodules_faint_on_ct_and_pet():
    rows = _subjects("screening")
    lesions = [les for subj, _, _ in rows for les in subj.lesions]
    ggn = [les for les in lesions if not les.solid]
    lung = [les for les in lesions if les.site == "lung"]
    assert all(not subj.lesions[0].solid for subj, _, _ in rows)  # the nodule each subject is followed for
    further = [les for subj, _, _ in rows for les in subj.lesions[1:] if les.site == "lung"]
    assert 0.45 < np.mean([not les.solid for les in further]) < 0.75  # 60 % of the further lung lesions
    assert 0.8 < len(ggn) / len(lung) < 0.92
    assert all(les.site == "lung" and -650 <= les.hu <= -350 and les.suv <= 1.6 and not les.spiculated
               and 12 <= les.radius_mm <= 26 for les in ggn)
    assert all(les.solid for subj, _, _ in _subjects("mixed", "clinical", 100) for les in subj.lesions)
    # rendered: the nodule's voxels sit between lung (about -850 HU) and soft tissue on CT
    subj = next(s for s, _, _ in rows if any(not les.solid and les.radius_mm > 15 for les in s.lesions))
    ct, _pet, _mask, labels = _anatomy.render(subj, (64, 64, 64), np.random.default_rng(0))
    les = next(les for les in subj.lesions if not les.solid and les.radius_mm > 15)
    idx = tuple(int((c + 1) / 2 * 64) for c in les.center)
    assert labels[idx] == _anatomy.LABELS["lesion_lung"] and -660 <= ct[idx] <= -340


def _harrell(risk, time, event) -> float:
    """Harrell's C by its definition: over comparable pairs (the earlier time an event), the share the
    higher risk orders correctly, ties counting one half."""
    num = den = 0.0
    for i in np.flatnonzero(event):
        later = time > time[i]
        den += later.sum()
        num += (risk[i] > risk[later]).sum() + 0.5 * (risk[i] == risk[later]).sum()
    return num / den


def test_imaging_survival_is_driven_by_what_the_scan_shows():
    def burden(subj):
        return np.log1p(sum(les.volume_ml() for les in subj.lesions))

    for survival, low, high in (("imaging", 0.80, 0.92), ("clinical", 0.62, 0.74)):
        rows = _subjects("mixed", survival, 600)
        time = np.array([ehr["time"] for _, ehr, _ in rows])
        event = np.array([ehr["event"] for _, ehr, _ in rows])
        risk = np.array([burden(s) for s, _, _ in rows])
        c = _harrell(risk, time, event)
        assert low < c < high, (survival, c)
    # the hand-written C agrees with Kendall's tau where there is no censoring: C = (1 + tau) / 2 on all pairs
    rng = np.random.default_rng(0)
    r, t = rng.normal(size=50), rng.exponential(size=50)
    tau = kendalltau(-r, t).statistic
    assert _harrell(r, t, np.ones(50, bool)) == pytest.approx((1 + tau) / 2)
