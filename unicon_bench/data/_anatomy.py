"""Analytic chest anatomy and lesions behind the CT/PET phantoms.

Geometry lives in normalised coordinates ``(z, y, x)`` in ``[-1, 1]`` (z towards the head, y
posterior, x towards the patient's left) covering a cube of ``FOV_MM``; signed distances are in
millimetres.  Sampling a subject (:func:`sample_subject`) uses no grid, so one subject is the same
anatomy at every shape; :func:`render` voxelises it into noiseless CT (HU), PET (SUV), lesion mask
and an organ label map.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FOV_MM = 256.0
HALF_MM = FOV_MM / 2
# Organ label map values (for tests and diagnostics; not part of the cohort).
LABELS = {"air": 0, "fat": 1, "soft": 2, "lung": 3, "blood": 4, "myocardium": 5, "liver": 6,
          "kidney": 7, "bone": 8, "lesion_lung": 9, "lesion_soft": 10}
_LEGENDRE = (lambda t: 1.5 * t * t - 0.5, lambda t: 2.5 * t ** 3 - 1.5 * t,
             lambda t: (35 * t ** 4 - 30 * t * t + 3) / 8)


@dataclass
class Lesion:
    """One lesion: a lobulated sphere with optional spicules, plus its CT/PET intensities."""

    center: np.ndarray          # normalised (z, y, x)
    radius_mm: float
    malignant: bool
    site: str                   # "lung", "mediastinum", "paracardiac" or "liver"
    hu: float
    suv: float
    lob_axes: np.ndarray        # (m, 3) unit axes of the zonal harmonics
    lob_order: np.ndarray       # (m,) Legendre order index (0 -> P2, 1 -> P3, 2 -> P4)
    lob_coef: np.ndarray        # (m,) relative amplitude
    spic_dirs: np.ndarray       # (s, 3) unit directions
    spic_len_mm: np.ndarray     # (s,)
    solid: bool = True          # False: a subsolid (ground-glass) nodule, faint on CT and on FDG-PET

    def surface(self, u: np.ndarray) -> np.ndarray:
        """Surface radius (normalised units) along unit directions ``u`` (..., 3)."""
        f = 0.0
        for ax, order, coef in zip(self.lob_axes, self.lob_order, self.lob_coef):
            f = f + coef * _LEGENDRE[order](u @ ax)
        return self.radius_mm / HALF_MM * np.maximum(1.0 + f, 0.4)

    @property
    def spiculated(self) -> bool:
        return len(self.spic_dirs) > 0

    @property
    def lobulated(self) -> bool:
        return float(np.abs(self.lob_coef).sum()) > 0.15

    def volume_ml(self) -> float:
        """Analytic volume (body by quadrature over directions, spicules as cones)."""
        r = self.surface(_FIB_DIRS) * HALF_MM
        body = 4.0 / 3.0 * np.pi * float(np.mean(r ** 3))
        base = self._spic_radius()
        outside = np.maximum(self.spic_len_mm - self.radius_mm, 0.0)
        spic = float(np.sum(np.pi / 3 * (base ** 2 + base + 1.0) * outside))
        return (body + spic) / 1000.0

    def _spic_radius(self) -> float:
        return float(np.clip(0.3 * self.radius_mm, 2.5, 5.0))

    def sd(self, z, y, x) -> np.ndarray:
        """Signed distance (mm, negative inside) on broadcastable normalised coordinates."""
        d = np.stack(np.broadcast_arrays(z - self.center[0], y - self.center[1], x - self.center[2]), -1)
        r = np.sqrt(np.sum(d * d, -1))
        u = d / np.maximum(r, 1e-6)[..., None]
        out = (r - self.surface(u)) * HALF_MM
        rb = self._spic_radius()
        for v, length in zip(self.spic_dirs, self.spic_len_mm):
            p0 = self.center + v * 0.5 * self.radius_mm / HALF_MM
            p1 = self.center + v * length / HALF_MM
            out = np.minimum(out, segment_sd(z, y, x, p0, p1, rb, 1.0))
        return out


def _fibonacci(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5 ** 0.5) * i
    return np.stack([np.cos(phi), np.sin(phi) * np.sin(theta), np.sin(phi) * np.cos(theta)], -1)


_FIB_DIRS = _fibonacci(400)


def ellipsoid_sd(z, y, x, c, a) -> np.ndarray:
    """Approximate signed distance (mm) to an axis-aligned ellipsoid; ``a[i] = inf`` drops an axis."""
    terms = [(q - ci, ai) for q, ci, ai in zip((z, y, x), c, a) if np.isfinite(ai)]
    rho = np.sqrt(sum((d / ai) ** 2 for d, ai in terms))
    grad = np.sqrt(sum((d / ai ** 2) ** 2 for d, ai in terms)) / np.maximum(rho, 1e-6)
    finite = [ai for _, ai in terms]
    # First-order distance (rho - 1) / |grad rho|; the clip keeps it finite at the centre.
    grad = np.clip(grad, 1.0 / max(finite), 1.0 / min(finite))
    return (rho - 1.0) / grad * HALF_MM


def segment_sd(z, y, x, p0, p1, r0, r1) -> np.ndarray:
    """Signed distance (mm) to a tapered capsule from ``p0`` (radius r0 mm) to ``p1`` (r1 mm)."""
    v = np.asarray(p1, float) - p0
    dz, dy, dx = z - p0[0], y - p0[1], x - p0[2]
    t = np.clip((dz * v[0] + dy * v[1] + dx * v[2]) / max(float(v @ v), 1e-9), 0.0, 1.0)
    dist = np.sqrt((dz - t * v[0]) ** 2 + (dy - t * v[1]) ** 2 + (dx - t * v[2]) ** 2)
    return dist * HALF_MM - (r0 + (r1 - r0) * t)


@dataclass
class Subject:
    """Shape-independent anatomy of one subject (all lengths normalised unless named _mm)."""

    p: dict                         # organ geometry and intensities
    vessels: list                   # (p0, p1, r0_mm, r1_mm)
    lesions: list = field(default_factory=list)

    # Implicit region tests used for lesion placement (values in mm, negative inside).
    def lung_sd(self, pt, side: int) -> float:
        p = self.p
        c = (p["lung_z"], p["lung_y"], side * p["lung_x"])
        s = ellipsoid_sd(*pt, c, p[f"lung_a{side}"])
        return float(max(s, ellipsoid_sd(*pt, (0, p["body_y"], 0), (np.inf, *p["cavity_a"]))))

    def organ_sd(self, pt, name: str) -> float:
        return float(ellipsoid_sd(*pt, self.p[name + "_c"], self.p[name + "_a"]))


def sample_subject(rng: np.random.Generator, n_lesions: int, p_malignant: float, subsolid: float = 0.0,
                   primary: str = "") -> Subject:
    """Draw one subject's anatomy and ``n_lesions`` lesions (each malignant w.p. ``p_malignant``; a lung
    lesion is a subsolid nodule w.p. ``subsolid``). ``primary`` makes the first lesion the finding that
    brought the subject in: "solid", a malignant lung tumour; "subsolid", a ground-glass lung nodule. The
    defaults draw exactly the phantom-v2 sequence."""
    u = rng.uniform
    s, dz = u(0.92, 1.05), u(-0.08, 0.08)
    fat = u(0.04, 0.08)
    ay, ax = 0.66 * s, min(0.9 * s, 0.95)
    p = {"scale": s, "dz": dz, "body_y": 0.02, "body_a": (ay, ax), "fat": fat,
         "inner_a": (ay - fat, ax - fat), "cavity_a": (ay - fat - 0.08, ax - fat - 0.08),
         "rib_a": (ay - fat - 0.045, ax - fat - 0.045), "rib_z0": u(0, 0.28),
         "lung_z": 0.12 + dz, "lung_y": 0.05, "lung_x": 0.47 * s,
         "hu_fat": u(-100, -60), "hu_soft": u(35, 50), "hu_lung": u(-870, -820),
         "hu_liver": u(55, 65), "hu_trab": u(300, 400), "suv_soft": u(0.7, 1.0),
         "suv_blood": u(1.5, 2.0), "suv_myo": u(6.0, 12.0), "suv_liver": u(2.0, 3.0),
         "suv_kidney": u(5.0, 15.0), "suv_marrow": u(1.0, 1.5), "disc_phase": u(0, 0.22)}
    for side in (-1, 1):
        p[f"lung_a{side}"] = (0.82 * u(0.92, 1.05), 0.48 * s * u(0.92, 1.05), 0.32 * s * u(0.92, 1.05))
    p["heart_c"] = (-0.25 + dz + u(-0.05, 0.05), -0.2 * s, 0.12 * s + u(-0.03, 0.03))
    p["heart_a"] = tuple(np.array([0.32, 0.3 * s, 0.32 * s]) * u(0.9, 1.1))
    p["liver_c"], p["liver_a"] = (-1.02 + dz, 0.0, -0.3 * s), (0.42, 0.5 * s, 0.55 * s)
    p["aorta_c"], p["aorta_r"] = (0.3 * s, 0.13 * s), u(0.085, 0.11)
    p["spine_c"], p["spine_r"] = (0.42 * s, 0.0), 0.15
    p["kidney_c"] = [(-1.0 + dz, 0.38 * s, side * 0.3 * s) for side in (-1, 1)]
    p["kidney_a"] = (0.24, 0.12, 0.1)
    # Brown fat / muscle uptake: hot on PET, fat on CT - bait for PET-only false positives.
    p["bat"] = (0.9, -0.1, rng.choice([-1, 1]) * 0.5 * s) if u() < 0.3 else None
    p["suv_bat"] = u(3.0, 8.0)
    vessels = []
    for side in (-1, 1):
        hilum = np.array([0.1 + dz, 0.05, side * 0.2 * s])
        for _ in range(6):
            end = np.array([p["lung_z"], p["lung_y"], side * p["lung_x"]]) + \
                rng.uniform(-0.75, 0.75, 3) * np.array(p[f"lung_a{side}"])
            vessels.append((hilum, end, u(3.5, 5.5), 1.5))
    subj = Subject(p, vessels)
    for k in range(n_lesions):
        malignant = u() < p_malignant
        if primary and k == 0:  # a lung lesion, malignant if solid, ground-glass if subsolid
            subj.lesions.append(_sample_lesion(rng, subj, malignant or primary == "solid",
                                               float(primary == "subsolid"), lung=True))
        else:
            subj.lesions.append(_sample_lesion(rng, subj, malignant, subsolid))
    return subj


def _sample_lesion(rng: np.random.Generator, subj: Subject, malignant: bool, subsolid: float = 0.0,
                   lung: bool = False) -> Lesion:
    u, p = rng.uniform, subj.p
    # Size is the strongest CT sign of malignancy (Lung-RADS): masses vs small nodules, with overlap
    # left to shape and uptake (phantom v2; v1 drew 14-38 / 12-28 mm and CT alone hardly told them apart).
    radius = u(22.0, 40.0) if malignant else u(8.0, 20.0)
    where = "lung" if u() < 0.75 else str(rng.choice(["mediastinum", "paracardiac", "liver"],
                                                     p=[0.5, 0.2, 0.3]))
    if lung:  # the same draws, then the site forced: the primary tumour of a staging referral
        where = "lung"
    if where != "lung":  # nodes and metastases outside the lung stay below bulky size
        radius = min(radius, 24.0)
    rn = radius / HALF_MM
    center = None
    for _ in range(200):
        if where == "lung":
            side = int(rng.choice([-1, 1]))
            c = np.array([p["lung_z"], p["lung_y"], side * p["lung_x"]]) + \
                rng.uniform(-0.85, 0.85, 3) * np.array(p[f"lung_a{side}"])
            ok = (subj.lung_sd(c, side) < -0.5 * radius and subj.organ_sd(c, "heart") > 0.7 * radius
                  and subj.organ_sd(c, "liver") > 0.7 * radius)
        elif where == "mediastinum":
            c = np.array([u(-0.05, 0.5) + p["dz"], u(-0.3, 0.15), u(-0.1, 0.1)])
            ok = (np.hypot(c[1] + 0.02, c[2]) > 0.07 + 0.6 * rn or c[0] < 0.25 + p["dz"]) \
                and c[1] + rn < p["spine_c"][0] - p["spine_r"]
        elif where == "paracardiac":
            v = rng.normal(size=3)
            v[0] = abs(v[0])  # above the heart's equator, towards the mediastinum
            c = np.array(p["heart_c"]) + v / np.linalg.norm(v) * (np.array(p["heart_a"]) + 0.5 * rn)
            ok = True
        else:
            c = np.array(p["liver_c"]) + rng.uniform(-0.7, 0.7, 3) * np.array(p["liver_a"])
            ok = subj.organ_sd(c, "liver") < -0.6 * radius
        if ok and -0.85 < c[0] < 0.85 and abs(c[1]) < 0.6 and abs(c[2]) < 0.8:
            center = c
            break
    if center is None:  # crowded anatomy: fall back to the centre of the right lung
        where, center = "lung", np.array([p["lung_z"], p["lung_y"], -p["lung_x"]])
    m = 3
    amp = u(0.08, 0.3) if malignant else u(0.0, 0.06)
    axes = rng.normal(size=(m, 3))
    coef = rng.normal(size=m)
    coef = amp * coef / np.abs(coef).sum()
    n_spic = (int(rng.integers(3, 8)) if u() < 0.6 else 0) if malignant else \
        (int(rng.integers(1, 3)) if u() < 0.08 else 0)
    if where != "lung":  # spiculation is a sign of tumour invading lung parenchyma
        n_spic = 0
    dirs = rng.normal(size=(n_spic, 3))
    # FDG overlaps clinically: low-grade cancers are barely avid, granulomas and reactive nodes are.
    if malignant:
        suv = u(1.5, 3.5) if u() < 0.15 else float(np.clip(np.exp(rng.normal(np.log(7.0), 0.45)),
                                                           3.0, 16.0))
    else:
        suv = u(3.5, 7.0) if u() < 0.15 else u(1.5, 3.5)
    hu = u(20.0, 45.0) if where == "liver" else u(20.0, 60.0)
    lesion = Lesion(center, radius, malignant, where, hu, suv,
                    axes / np.linalg.norm(axes, axis=1, keepdims=True), rng.integers(0, 3, m), coef,
                    dirs / np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-9),
                    radius * u(1.3, 2.0, n_spic))
    if subsolid > 0 and where == "lung" and u() < subsolid:
        # Ground-glass nodule (the adenocarcinoma spectrum of screening CT): hazy attenuation well below
        # soft tissue (-650 to -350 HU), 12-26 mm radius (lengths here are scaled to the coarse grid, as the
        # solid lesions' are), smooth, and barely FDG-avid (SUV 0.8-1.6). Drawn after every v2 draw, so
        # ``subsolid=0`` keeps the v2 subjects.
        lesion.hu, lesion.suv, lesion.solid = u(-650.0, -350.0), u(0.8, 1.6), False
        lesion.radius_mm = u(12.0, 26.0)
        lesion.spic_dirs, lesion.spic_len_mm = lesion.spic_dirs[:0], lesion.spic_len_mm[:0]
    return lesion


class _Canvas:
    """Noiseless CT/PET/label volumes painted primitive by primitive (later ones on top)."""

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)
        self.axes = [((np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1) for n in self.shape]
        self.vox_mm = float(np.mean([FOV_MM / n for n in self.shape]))
        self.ct = np.full(self.shape, -1000.0, np.float32)
        self.pet = np.full(self.shape, 0.02, np.float32)
        self.labels = np.zeros(self.shape, np.uint8)
        self.mask = np.zeros(self.shape, np.uint8)

    def _box(self, lo, hi):
        out = []
        for ax, l, h in zip(self.axes, lo, hi):
            i0 = int(np.searchsorted(ax, l - 1e-3))
            i1 = int(np.searchsorted(ax, h + 1e-3))
            out.append(slice(max(i0 - 1, 0), min(i1 + 1, len(ax))))
        return tuple(out)

    def paint(self, sd_fn, hu, suv, label, lo=(-1, -1, -1), hi=(1, 1, 1), sharp=False,
              lesion_center=None):
        box = self._box(lo, hi)
        if any(b.start >= b.stop for b in box):
            return
        z, y, x = (a[b][sl] for a, b, sl in zip(self.axes, box, (np.s_[:, None, None],
                                                                   np.s_[None, :, None],
                                                                   np.s_[None, None, :])))
        sd = np.broadcast_to(sd_fn(z, y, x), tuple(b.stop - b.start for b in box)).astype(np.float32)
        if lesion_center is not None:
            # Guarantee that even a sub-voxel lesion owns the voxel holding its centre.
            idx = tuple(int(np.clip((c + 1) / 2 * n, 0, n - 1)) - b.start
                        for c, n, b in zip(lesion_center, self.shape, box))
            if all(0 <= i < s for i, s in zip(idx, sd.shape)):
                sd = sd.copy()
                sd[idx] = min(sd[idx], -0.25 * self.vox_mm)
        # Organs get a one-voxel partial-volume edge; lesions are voxelised sharply (CT-like).
        occ = (sd <= 0).astype(np.float32) if sharp else np.clip(0.5 - sd / self.vox_mm, 0.0, 1.0)
        for vol, val in ((self.ct, hu), (self.pet, suv)):
            if val is not None:
                v = vol[box]
                v += occ * (np.asarray(val, np.float32) - v)
        if label is not None:
            self.labels[box][occ >= 0.5] = label
        if lesion_center is not None:
            self.mask[box] |= (sd <= 0).astype(np.uint8)


def render(subj: Subject, shape, rng: np.random.Generator):
    """Voxelise ``subj``: returns noiseless ``(ct_hu, pet_suv, lesion_mask, labels)``."""
    cv, p, L = _Canvas(shape), subj.p, LABELS
    inf, by = np.inf, p["body_y"]
    cv.paint(lambda z, y, x: ellipsoid_sd(z, y, x, (0, by, 0), (inf, *p["body_a"])),
             p["hu_fat"], 0.35, L["fat"])
    cv.paint(lambda z, y, x: ellipsoid_sd(z, y, x, (0, by, 0), (inf, *p["inner_a"])),
             p["hu_soft"], p["suv_soft"], L["soft"])
    if p["bat"] is not None:
        c = np.array(p["bat"])
        cv.paint(lambda z, y, x: ellipsoid_sd(z, y, x, c, (0.08, 0.06, 0.1)), p["hu_fat"],
                 p["suv_bat"], L["fat"], c - 0.15, c + 0.15)
    # Ribs: tilted bands on an elliptic shell inside the chest wall, none at the sternum or spine.
    sy, sx = p["rib_a"]

    def ribs(z, y, x):
        shell = np.abs(ellipsoid_sd(z, y, x, (0, by, 0), (inf, sy, sx))) - 4.0
        zz = z - 0.3 * y - p["rib_z0"]
        band = (np.abs(zz - np.round(zz / 0.28) * 0.28) - 0.045) * HALF_MM
        gaps = np.maximum((-y - 0.55 * sy) * HALF_MM, (0.12 - np.abs(x)) * HALF_MM)
        return np.maximum(np.maximum(shell, band), gaps)
    cv.paint(ribs, 700.0, 0.45, L["bone"])
    lung_tex = _smooth_noise(rng, cv.shape, np.asarray(cv.shape) / 32.0) * 25.0
    for side in (-1, 1):
        c, a = (p["lung_z"], p["lung_y"], side * p["lung_x"]), p[f"lung_a{side}"]
        cv.paint(lambda z, y, x, c=c, a=a: np.maximum(
            ellipsoid_sd(z, y, x, c, a), ellipsoid_sd(z, y, x, (0, by, 0), (inf, *p["cavity_a"]))),
            p["hu_lung"], 0.35, L["lung"], np.subtract(c, a), np.add(c, a))
    lung = cv.labels == L["lung"]
    cv.ct[lung] += lung_tex[lung]
    for p0, p1, r0, r1 in subj.vessels:
        m = r0 / HALF_MM
        cv.paint(lambda z, y, x, p0=p0, p1=p1, r0=r0, r1=r1: segment_sd(z, y, x, p0, p1, r0, r1),
                 40.0, p["suv_blood"], None, np.minimum(p0, p1) - m, np.maximum(p0, p1) + m)
    hc, ha = np.array(p["heart_c"]), np.array(p["heart_a"])
    cv.paint(lambda z, y, x: ellipsoid_sd(z, y, x, hc, ha), 50.0, p["suv_myo"], L["myocardium"],
             hc - ha, hc + ha)
    cv.paint(lambda z, y, x: ellipsoid_sd(z, y, x, hc, ha - 0.1), 45.0, p["suv_blood"], L["blood"],
             hc - ha, hc + ha)
    ac, ar = p["aorta_c"], p["aorta_r"]
    cv.paint(lambda z, y, x: ellipsoid_sd(z, y, x, (0, *ac), (inf, ar, ar)), 45.0, p["suv_blood"],
             L["blood"])
    cv.paint(lambda z, y, x: np.maximum(ellipsoid_sd(z, y, x, (0, -0.02, 0), (inf, 0.07, 0.07)),
                                        (0.25 + p["dz"] - z) * HALF_MM), -990.0, 0.02, L["air"])
    lc, la = np.array(p["liver_c"]), np.array(p["liver_a"])
    cv.paint(lambda z, y, x: np.maximum(ellipsoid_sd(z, y, x, lc, la), ellipsoid_sd(
        z, y, x, (0, by, 0), (inf, *p["inner_a"]))), p["hu_liver"], p["suv_liver"], L["liver"],
        lc - la, lc + la)
    ka = np.array(p["kidney_a"])
    for kc in p["kidney_c"]:
        cv.paint(lambda z, y, x, kc=kc: ellipsoid_sd(z, y, x, kc, ka), 35.0, p["suv_kidney"],
                 L["kidney"], np.subtract(kc, ka), np.add(kc, ka))
    (spy, spx), sr = p["spine_c"], p["spine_r"]
    cv.paint(lambda z, y, x: ellipsoid_sd(z, y, x, (0, spy, spx), (inf, sr, sr)), 700.0,
             p["suv_marrow"], L["bone"])

    def trabecular(z, y, x):
        zz = z - p["disc_phase"]
        disc = 0.025 - np.abs(zz - np.round(zz / 0.22) * 0.22)  # positive inside a disc
        return np.maximum(ellipsoid_sd(z, y, x, (0, spy, spx), (inf, sr - 0.03, sr - 0.03)),
                          disc * HALF_MM)
    cv.paint(trabecular, p["hu_trab"], None, None)
    cv.paint(lambda z, y, x: ellipsoid_sd(z, y, x, (0, spy + sr + 0.05, spx), (inf, 0.05, 0.04)),
             600.0, 0.45, L["bone"])
    for les in subj.lesions:
        ext = (les.radius_mm * 1.5 + (max(les.spic_len_mm) if les.spiculated else 0) + 8) / HALF_MM
        label = L["lesion_lung"] if les.site == "lung" else L["lesion_soft"]
        cv.paint(les.sd, les.hu, les.suv, label, les.center - ext, les.center + ext,
                 sharp=True, lesion_center=les.center)
        if les.malignant and les.solid and les.radius_mm > 25:  # necrotic core: cold centre on PET
            core = les.radius_mm * 0.45 / HALF_MM
            cv.paint(lambda z, y, x, c=les.center, r=core: ellipsoid_sd(z, y, x, c, (r, r, r)),
                     None, 0.35 * les.suv, None, les.center - core, les.center + core)
    return cv.ct, cv.pet, cv.mask, cv.labels


def _smooth_noise(rng: np.random.Generator, shape, sigma_mm_vox: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    n = rng.standard_normal(shape, dtype=np.float32)
    g = gaussian_filter(n, sigma_mm_vox, mode="wrap")
    return g / max(float(g.std()), 1e-6)
