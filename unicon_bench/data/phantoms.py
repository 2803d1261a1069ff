"""Deterministic synthetic chest CT/PET cohorts with site shifts, EHR, survival and reports.

Each subject is drawn from its own seed ``(seed, site, k)``, so cohorts of different ``n`` share
their first subjects and a subject's anatomy and labels are the same at every grid shape (16^3 is a
coarser sampling of the same chest as 64^3).  Acquisition (noise, blur, resolution, calibration)
follows the scanner profile in :data:`SITES`; lengths given in voxels refer to the 32^3 reference
grid and are scaled with the shape.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from unicon_bench.data import _anatomy

PHANTOM_VERSION: int = 2
_REF_SHAPE = 32
_PET_NATIVE_FACTOR = 2.0  # PET reconstructs on a grid twice as coarse as the 32^3 CT grid


@dataclass(frozen=True)
class SiteProfile:
    """Scanner/acquisition profile of one site (voxel lengths on the 32^3 reference grid)."""

    name: str
    noise_hu: float           # CT white noise, HU
    blur_sigma_vox: float     # Gaussian sigma along z (axis 0): slice thickness
    hu_scale: float           # calibration: hu * scale + offset
    hu_offset: float
    resolution_factor: float  # in-plane and axial down-then-up sampling factor, 1 = native
    pet_noise: float          # relative Poisson noise at SUV 1 on the PET grid
    pet_fwhm_vox: float       # PET point-spread function FWHM


# The PSF is set in voxels, not the clinical 5-6 mm: at 8 mm voxels a true-to-mm PSF would be
# sub-voxel, and what decides the task is the ratio of lesion size to PSF (2-6 clinically).
SITES: dict[str, SiteProfile] = {
    "A": SiteProfile("A", 10.0, 0.0, 1.00, 0.0, 1.0, 0.15, 2.0),
    "B": SiteProfile("B", 25.0, 0.7, 1.05, 30.0, 1.0, 0.25, 2.5),
    "C": SiteProfile("C", 15.0, 0.3, 0.90, -40.0, 2.0, 0.20, 3.0),
}


@dataclass(frozen=True)
class CohortProfile:
    """Who is scanned: the referral population behind a cohort (lesion count, malignancy, phenotype)."""

    name: str
    n_lesion_p: tuple[float, float, float, float]  # P(0, 1, 2, 3 lesions)
    p_malignant: float            # per lesion, for a never smoker
    p_malignant_smoking: float    # added per smoking level (former, current)
    subsolid: float               # fraction of lung lesions that are ground-glass (subsolid) nodules
    primary: str = ""             # the first lesion is the finding that brought the subject in: "solid" (a
                                  # malignant lung tumour) or "subsolid" (a ground-glass nodule); "": none


# "mixed" is the phantom-v2 population (nodules referred for work-up). "screening": the nodules a low-dose
# lung-cancer screening programme follows up: each subject has the ground-glass nodule it is followed for,
# most further findings are small benign nodules, many ground-glass too. "staging": PET/CT
# referrals to stage a known or suspected lung cancer: every subject has its primary lung tumour (a malignant
# lung lesion), and most further lesions are nodal, pericardial or hepatic spread or second nodules.
COHORTS: dict[str, CohortProfile] = {
    "mixed": CohortProfile("mixed", (0.15, 0.42, 0.28, 0.15), 0.28, 0.08, 0.0),
    "screening": CohortProfile("screening", (0.0, 0.60, 0.30, 0.10), 0.10, 0.05, 0.6, primary="subsolid"),
    "staging": CohortProfile("staging", (0.0, 0.40, 0.35, 0.25), 0.65, 0.05, 0.0, primary="solid"),
}
# How survival depends on the subject: "clinical" (phantom v2: lesion volume, malignancy, age and smoking,
# which the image does not show; Weibull proportional hazards) or "imaging" (what a scan shows: tumour
# burden, malignancy, spread beyond the lung, FDG avidity; age a little; log-normal times).
SURVIVAL_MODELS = ("clinical", "imaging")


# Portal-venous phase of an iodinated-contrast CT (about 70 s after injection; the staging protocol of lung
# cancer): HU added per organ label of the rendered anatomy. Blood and kidneys enhance most, the liver by
# about 50 HU, so that hepatic metastases (enhancing less) turn hypodense; solid lesions enhance by 15-25 HU.
# The lungs (and the pulmonary vessels painted in them), air, fat and bone are unchanged.
CONTRAST_PHASES = ("none", "venous")
_ENHANCEMENT_HU = np.zeros(max(_anatomy.LABELS.values()) + 1, np.float32)
for _name, _hu in {"soft": 10.0, "blood": 150.0, "myocardium": 60.0, "liver": 50.0, "kidney": 120.0,
                   "lesion_lung": 25.0, "lesion_soft": 15.0}.items():
    _ENHANCEMENT_HU[_anatomy.LABELS[_name]] = _hu


@dataclass(frozen=True)
class PhantomConfig:
    """What to generate: ``n`` subjects of ``shape`` acquired at ``site`` from ``seed``, drawn from the
    ``cohort`` population with the ``survival`` model, CT in the ``contrast`` phase (defaults: phantom v2)."""

    n: int
    shape: tuple[int, int, int] = (32, 32, 32)
    site: str = "A"
    seed: int = 0
    cohort: str = "mixed"
    survival: str = "clinical"
    contrast: str = "none"

    def __post_init__(self):
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 3 or min(shape) < 8:
            raise ValueError(f"shape must be three sizes >= 8, got {self.shape}")
        if self.site not in SITES:
            raise ValueError(f"unknown site {self.site!r}; known: {sorted(SITES)}")
        if self.cohort not in COHORTS:
            raise ValueError(f"unknown cohort {self.cohort!r}; known: {sorted(COHORTS)}")
        if self.survival not in SURVIVAL_MODELS:
            raise ValueError(f"unknown survival model {self.survival!r}; known: {list(SURVIVAL_MODELS)}")
        if self.contrast not in CONTRAST_PHASES:
            raise ValueError(f"unknown contrast phase {self.contrast!r}; known: {list(CONTRAST_PHASES)}")
        if int(self.n) < 1 or int(self.seed) < 0:
            raise ValueError("n must be >= 1 and seed >= 0")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "seed", int(self.seed))

    def key(self) -> str:
        """SHA-256 hex of the config, the site and cohort profiles and :data:`PHANTOM_VERSION` (a v2 config
        keeps its v2 key)."""
        fields = {"n": self.n, "shape": list(self.shape), "site": self.site,
                  "seed": self.seed, "profile": asdict(SITES[self.site]), "version": PHANTOM_VERSION}
        if self.contrast != "none":
            fields.update(contrast=self.contrast, enhancement=_ENHANCEMENT_HU.tolist(), version=3)
        if (self.cohort, self.survival) != ("mixed", "clinical"):
            fields.update(cohort=asdict(COHORTS[self.cohort]), survival=self.survival, version=3)
            if self.survival == "imaging":  # its constants are part of what is generated
                fields.update(beta=_BETA_IMAGING, aft=[_AFT_MEDIAN, _AFT_SIGMA], suv=[_LOGSUV_MU, _LOGSUV_SD])
        blob = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class PhantomCohort:
    """Images, labels, EHR and reports of ``len(self)`` subjects.

    ``ct`` (HU, after the site's acquisition) and ``pet`` (SUV) are float32 ``(n, D, H, W)`` and
    co-registered; ``mask`` is the uint8 union of lesions; ``malignant``/``event``/``smoking`` are
    int64, ``time`` (months), ``age`` (years) and ``lesion_volume_ml`` (mask volume) float32.
    """

    ct: np.ndarray
    pet: np.ndarray
    mask: np.ndarray
    malignant: np.ndarray
    time: np.ndarray
    event: np.ndarray
    age: np.ndarray
    smoking: np.ndarray
    lesion_volume_ml: np.ndarray
    reports: list[str]
    spacing_mm: tuple[float, float, float]
    config: PhantomConfig

    def __len__(self) -> int:
        return int(self.malignant.shape[0])

    def subset(self, idx) -> PhantomCohort:
        """Subjects ``idx`` (int, slice, index array or boolean mask); ``config`` is kept."""
        take = np.atleast_1d(np.arange(len(self))[idx])
        arrays = {f: getattr(self, f)[take] for f in _ARRAY_FIELDS}
        return PhantomCohort(**arrays, reports=[self.reports[i] for i in take],
                             spacing_mm=self.spacing_mm, config=self.config)


_ARRAY_FIELDS = ("ct", "pet", "mask", "malignant", "time", "event", "age", "smoking",
                 "lesion_volume_ml")
_SMOKING_P = (0.35, 0.40, 0.25)
_SMOKING_WORD = ("never smoker", "former smoker", "current smoker")
# Survival: Weibull proportional hazards; standardisation constants are fixed (not cohort
# statistics) so that a subject's times do not depend on who else is in the cohort.
_WEIBULL_SHAPE, _WEIBULL_SCALE = 1.2, 55.0
_BETA = {"log_volume": 0.5, "malignant": 0.9, "age": 0.4, "smoking": 0.25}
_LOGVOL_MU, _LOGVOL_SD = 3.35, 1.72  # of log1p(volume ml) over the v2 lesion mix
_CENSOR_MEAN, _FOLLOW_UP = 100.0, 120.0
# The "imaging" model: burden = log1p(total lesion volume, ml), spread = organs other than the lung that
# hold a lesion (mediastinal nodes, pericardium, liver: 0-3), avidity = log SUVmax (standardised by fixed
# constants); the image shows all but age. Log effects on the time scale, as hazard ratios of the clinical
# literature: a cancer against a benign nodule 2.0 (about 7x), each organ of spread 1.0 (stage IV), one SD of
# burden 0.6, one SD of avidity 0.3, a decade of age 0.15.
_BETA_IMAGING = {"log_volume": 0.6, "malignant": 2.0, "spread": 1.0, "log_suvmax": 0.3, "age": 0.15}
_LOGSUV_MU, _LOGSUV_SD = 1.4, 0.6
# Its times are log-normal (an accelerated-failure-time model, as often fitted to cancer survival): median 30
# months at lin = 0 and a scale of 0.7 on the log scale. The true risk then orders the subjects with a
# C-index of about 0.87 and the largest lesion's size alone with about 0.83 (the Weibull proportional-hazards
# noise of v2 capped the true risk at 0.70: no model could be told from another there).
_AFT_MEDIAN, _AFT_SIGMA = 30.0, 0.7


def _rng(cfg: PhantomConfig, k: int, stream: int, *extra: int) -> np.random.Generator:
    site = zlib.crc32(cfg.site.encode())
    return np.random.default_rng([cfg.seed, site, k, stream, *extra])


def _subject(cfg: PhantomConfig, k: int):
    """Subject ``k``: (anatomy, ehr dict, report) — independent of ``cfg.n`` and ``cfg.shape``."""
    rng = _rng(cfg, k, 0)
    cohort = COHORTS[cfg.cohort]
    age = float(np.clip(np.round(rng.normal(65.0, 10.0)), 35, 90))
    smoking = int(rng.choice(3, p=_SMOKING_P))
    n_les = int(rng.choice(4, p=cohort.n_lesion_p))
    subj = _anatomy.sample_subject(rng, n_les, p_malignant=cohort.p_malignant + cohort.p_malignant_smoking * smoking,
                                   subsolid=cohort.subsolid, primary=cohort.primary)
    malignant = int(any(les.malignant for les in subj.lesions))
    volume = sum(les.volume_ml() for les in subj.lesions)
    if cfg.survival == "imaging":
        b = _BETA_IMAGING
        spread = len({les.site for les in subj.lesions} - {"lung"})
        suvmax = max([les.suv for les in subj.lesions], default=1.0)
        lin = (b["log_volume"] * (np.log1p(volume) - _LOGVOL_MU) / _LOGVOL_SD + b["malignant"] * malignant
               + b["spread"] * spread + b["log_suvmax"] * (np.log(max(suvmax, 1.0)) - _LOGSUV_MU) / _LOGSUV_SD
               + b["age"] * (age - 65.0) / 10.0)
    else:
        lin = (_BETA["log_volume"] * (np.log1p(volume) - _LOGVOL_MU) / _LOGVOL_SD
               + _BETA["malignant"] * malignant + _BETA["age"] * (age - 65.0) / 10.0
               + _BETA["smoking"] * smoking)
    if cfg.survival == "imaging":  # log-normal accelerated failure time: log T = log(median) - lin + sigma * N(0, 1)
        t_death = _AFT_MEDIAN * np.exp(-lin + _AFT_SIGMA * rng.standard_normal())
    else:  # Weibull proportional hazards
        t_death = _WEIBULL_SCALE * (rng.exponential() / np.exp(lin)) ** (1.0 / _WEIBULL_SHAPE)
    t_censor = min(rng.exponential(_CENSOR_MEAN), _FOLLOW_UP)
    ehr = {"age": age, "smoking": smoking, "malignant": malignant,
           "event": int(t_death <= t_censor), "time": max(min(t_death, t_censor), 0.1)}
    return subj, ehr, _report(rng, subj, age, smoking)


def _ref(shape) -> np.ndarray:
    return np.asarray(shape, float) / _REF_SHAPE


def _resample(vol: np.ndarray, out_shape) -> np.ndarray:
    factors = np.asarray(out_shape, float) / np.asarray(vol.shape, float)
    out = zoom(vol, factors, order=1, mode="nearest", grid_mode=True)
    assert out.shape == tuple(out_shape), (out.shape, out_shape)
    return out


def _coarse(shape, factor) -> tuple[int, ...]:
    return tuple(max(4, round(n / f)) if f > 1 else n for n, f in zip(shape, factor))


def _acquire_ct(ct: np.ndarray, site: SiteProfile, rng: np.random.Generator) -> np.ndarray:
    shape, ref = ct.shape, _ref(ct.shape)
    factor = site.resolution_factor * ref
    if np.any(factor > 1):
        # Linear down-sampling on the cell grid averages neighbours: acts as its own anti-alias.
        ct = _resample(_resample(ct, _coarse(shape, factor)), shape)
    if site.blur_sigma_vox > 0:
        ct = gaussian_filter(ct, (site.blur_sigma_vox * ref[0], 0, 0), mode="nearest")
    ct = ct + rng.standard_normal(shape, dtype=np.float32) * np.float32(site.noise_hu)
    return (ct * site.hu_scale + site.hu_offset).astype(np.float32)


def _acquire_pet(pet: np.ndarray, site: SiteProfile, rng: np.random.Generator) -> np.ndarray:
    shape, ref = pet.shape, _ref(pet.shape)
    blurred = gaussian_filter(pet, site.pet_fwhm_vox / 2.3548 * ref, mode="nearest")
    coarse_shape = _coarse(shape, _PET_NATIVE_FACTOR * ref)
    coarse = np.maximum(_resample(blurred, coarse_shape) if coarse_shape != shape else blurred, 0)
    lam = 1.0 / site.pet_noise ** 2  # counts per SUV unit: relative noise pet_noise at SUV 1
    noisy = (rng.poisson(coarse.astype(np.float64) * lam) / lam).astype(np.float32)
    out = _resample(noisy, shape) if coarse_shape != shape else noisy
    return np.maximum(out, 0).astype(np.float32)


def generate(cfg: PhantomConfig) -> PhantomCohort:
    """Generate the cohort described by ``cfg`` (bit-identical for equal configs)."""
    site, shape = SITES[cfg.site], cfg.shape
    spacing = tuple(_anatomy.FOV_MM / s for s in shape)
    out = {"ct": np.empty((cfg.n, *shape), np.float32), "pet": np.empty((cfg.n, *shape), np.float32),
           "mask": np.empty((cfg.n, *shape), np.uint8)}
    ehr, reports = [], []
    for k in range(cfg.n):
        subj, rec, report = _subject(cfg, k)
        rng = _rng(cfg, k, 1, *shape)
        ct, pet, mask, labels = _anatomy.render(subj, shape, rng)
        if cfg.contrast == "venous":
            ct = ct + _ENHANCEMENT_HU[labels]
        out["ct"][k] = _acquire_ct(ct, site, rng)
        out["pet"][k] = _acquire_pet(pet, site, rng)
        out["mask"][k] = mask
        ehr.append(rec)
        reports.append(report)
    col = {key: np.array([r[key] for r in ehr]) for key in ehr[0]}
    return PhantomCohort(
        **out, malignant=col["malignant"].astype(np.int64), time=col["time"].astype(np.float32),
        event=col["event"].astype(np.int64), age=col["age"].astype(np.float32),
        smoking=col["smoking"].astype(np.int64),
        lesion_volume_ml=(out["mask"].reshape(cfg.n, -1).sum(1) * np.prod(spacing) / 1000.0
                          ).astype(np.float32),
        reports=reports, spacing_mm=spacing, config=cfg)


def default_cache_dir() -> Path:
    """``$UNICON_BENCH_CACHE`` if set, else ``<user cache dir>/unicon-bench/phantoms``."""
    env = os.environ.get("UNICON_BENCH_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("unicon-bench")) / "phantoms"


def _read(path: Path, cfg: PhantomConfig) -> PhantomCohort:
    with np.load(path, allow_pickle=False) as z:
        if str(z["key"]) != cfg.key():
            raise ValueError("cache key mismatch")
        arrays = {f: z[f] for f in _ARRAY_FIELDS}
        reports = [str(r) for r in z["reports"]]
        spacing = tuple(float(s) for s in z["spacing_mm"])
    if any(len(a) != cfg.n for a in arrays.values()) or len(reports) != cfg.n \
            or arrays["ct"].shape[1:] != cfg.shape:
        raise ValueError("cache content does not match the config")
    return PhantomCohort(**arrays, reports=reports, spacing_mm=spacing, config=cfg)


def load_cohort(cfg: PhantomConfig, cache_dir: str | Path | None = None) -> PhantomCohort:
    """Read ``<cache_dir>/<cfg.key()>.npz`` or generate it and write it atomically."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"{cfg.key()}.npz"
    if path.exists():
        try:
            return _read(path, cfg)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # corrupt or stale: regenerate below
    cohort = generate(cfg)
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{cfg.key()[:16]}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, key=np.array(cfg.key()), reports=np.array(cohort.reports, dtype=str),
                     spacing_mm=np.array(cohort.spacing_mm),
                     **{name: getattr(cohort, name) for name in _ARRAY_FIELDS})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return cohort


# ---------------------------------------------------------------------------------------- reports
_HEADERS = ("{age}-year-old {smoker}.", "Patient is {a} {age}-year-old {smoker}.",
            "Clinical history: {smoker}, {age} years old.",
            "Age {age}, {smoker}. PET/CT for nodule evaluation.")
_LUNG = ("{Count} pulmonary {noun}, {size} in the {loc}, {margin} margins, {avid}.",
         "{Count} {noun} in the lungs ({size}, {loc}) with {margin} margins; {avid}.",
         "CT shows {count} pulmonary {noun}, {size}, in the {loc}; {margin} margins, {avid}.")
_CLEAR = ("No pulmonary nodule.", "Lungs are clear; no suspicious pulmonary nodule.",
          "No pulmonary nodule or mass identified.")
_SOFT_KIND = {"mediastinum": "mediastinal lymph node", "paracardiac": "paracardiac soft-tissue lesion",
              "liver": "hepatic lesion"}
_CLOSING = ("", " Physiological uptake in myocardium and kidneys.", " No pleural effusion.")
_COUNT = {1: "a solitary", 2: "two", 3: "three"}


def _avid(suv: float) -> str:
    return "intensely FDG-avid" if suv >= 6 else "FDG-avid" if suv >= 2.5 else \
        "without significant FDG uptake"


def _diameter_mm(les) -> int:
    dirs = _anatomy._FIB_DIRS
    return round(float(np.max(les.surface(dirs) + les.surface(-dirs))) * _anatomy.HALF_MM)


def _report(rng: np.random.Generator, subj, age: float, smoking: int) -> str:
    article = "an" if str(int(age)).startswith("8") or int(age) in (11, 18) else "a"
    parts = [_HEADERS[rng.integers(len(_HEADERS))].format(age=int(age), a=article,
                                                          smoker=_SMOKING_WORD[smoking])]
    lung = sorted((les for les in subj.lesions if les.site == "lung"), key=lambda l: -l.radius_mm)
    if lung:
        big = lung[0]
        d = _diameter_mm(big)
        side = "right" if big.center[2] < 0 else "left"
        lobe = "upper" if big.center[0] > subj.p["lung_z"] else "lower"
        margin = "spiculated" if big.spiculated else "lobulated" if big.lobulated else "smooth"
        noun = ("mass" if d > 30 else "nodule") + ("" if len(lung) == 1 else
                                                    "es" if d > 30 else "s")
        count = _COUNT[len(lung)]
        text = _LUNG[rng.integers(len(_LUNG))].format(
            Count=count[0].upper() + count[1:], count=count, noun=noun, loc=f"{side} {lobe} lobe",
            size=f"measuring {d} mm" if len(lung) == 1 else f"largest {d} mm",
            margin=margin, avid=_avid(max(les.suv for les in lung)))
        parts.append(text)
    else:
        parts.append(_CLEAR[rng.integers(len(_CLEAR))])
    for les in subj.lesions:
        if les.site != "lung":
            kind = _SOFT_KIND[les.site]
            parts.append(f"{kind[0].upper()}{kind[1:]} ({_diameter_mm(les)} mm), {_avid(les.suv)}.")
    return " ".join(parts) + _CLOSING[rng.integers(len(_CLOSING))]
