"""Tiny synthetic CT/PET studies on disk: NIfTI (nibabel) and DICOM series (pydicom), in the layouts
of AutoPET, HECKTOR and the Medical Segmentation Decathlon. Volumes are small, non-cubic, with
anisotropic voxels and oblique or LPS affines, and hold a spherical lesion at a known world point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# F-18 FDG acquisition of the PET DICOM series: 70 kg, 370 MBq injected at 10:00:00, scan at 11:00:00.
PET_WEIGHT_KG, PET_DOSE_BQ, F18_HALF_LIFE_S = 70.0, 3.7e8, 6586.2
# Hand-derived: 3600 / 6586.2 = 0.546597 half-lives; 2 ** -0.546597 = 0.684633;
# decayed dose 3.7e8 * 0.684633 = 2.53314e8 Bq; factor 70 000 g / 2.53314e8 Bq = 2.76337e-4 ml/Bq.
PET_SUV_FACTOR = 2.76337e-4


def affine(spacing, angle_deg: float = 0.0, lps: bool = False, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Voxel -> world (RAS mm) matrix: scale by ``spacing``, rotate about z (oblique), flip x and y (LPS)."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    flip = np.diag([-1.0, -1.0, 1.0]) if lps else np.eye(3)
    out = np.eye(4)
    out[:3, :3] = flip @ rot @ np.diag(spacing)
    out[:3, 3] = origin
    return out


def world_grid(shape, aff: np.ndarray) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(float)
    return idx @ aff[:3, :3].T + aff[:3, 3]


def centre_world(shape, aff) -> np.ndarray:
    return aff[:3, :3] @ ((np.array(shape) - 1) / 2.0) + aff[:3, 3]


def sphere(shape, aff, centre, radius_mm: float) -> np.ndarray:
    return np.linalg.norm(world_grid(shape, aff) - np.asarray(centre), axis=-1) <= radius_mm


def body(shape) -> np.ndarray:
    """An ellipsoid filling most of the grid (in voxel units, so it is the 'body' at any affine)."""
    idx = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    return (idx ** 2).sum(0) <= 0.9


def ct_volume(shape, aff, lesion_centre, radius_mm=4.0, rng=None):
    """HU: air -1000, body 40, lesion 300 (plus noise); and the lesion mask."""
    rng = rng or np.random.default_rng(0)
    mask = sphere(shape, aff, lesion_centre, radius_mm)
    hu = np.where(body(shape), 40.0, -1000.0) + rng.normal(0, 5, shape)
    hu[mask] = 300.0
    return hu.astype(np.float32), mask.astype(np.uint8)


def pet_volume(shape, aff, lesion_centre, radius_mm=4.0, rng=None):
    """SUV: background 0, body 1, lesion 8; and the lesion mask."""
    rng = rng or np.random.default_rng(1)
    mask = sphere(shape, aff, lesion_centre, radius_mm)
    suv = np.where(body(shape), 1.0, 0.0) + np.abs(rng.normal(0, 0.05, shape))
    suv[mask] = 8.0
    return suv.astype(np.float32), mask.astype(np.uint8)


def save_nifti(path: Path, volume: np.ndarray, aff: np.ndarray) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(volume, aff), str(path))
    return path


# one geometry per subject: non-cubic, anisotropic, oblique and/or LPS
GEOMETRIES = [
    ((20, 18, 12), (1.5, 1.2, 3.0), 20.0, True),
    ((18, 22, 10), (1.2, 1.0, 3.5), 0.0, True),
    ((22, 16, 14), (1.0, 1.4, 2.5), -15.0, False),
    ((16, 20, 12), (1.3, 1.1, 3.0), 35.0, True),
]


def _subject_ct(k: int):
    shape, spacing, angle, lps = GEOMETRIES[k % len(GEOMETRIES)]
    aff = affine(spacing, angle, lps, origin=(10.0 * k, -5.0, 3.0))
    centre = centre_world(shape, aff) + np.array([2.0, -1.5, 1.0])
    return shape, aff, centre


def make_autopet(root: Path, n: int = 4) -> Path:
    for k in range(n):
        shape, aff, centre = _subject_ct(k)
        study = root / f"PETCT_{k:04d}" / f"0{k + 1}-01-2020-NA-PET-CT Ganzkoerper-{k}"
        ct, mask = ct_volume(shape, aff, centre, rng=np.random.default_rng(k))
        pet, _ = pet_volume(shape, aff, centre, rng=np.random.default_rng(100 + k))
        save_nifti(study / "CTres.nii.gz", ct, aff)
        save_nifti(study / "SUV.nii.gz", pet, aff)
        save_nifti(study / "SEG.nii.gz", mask, aff)
    return root


def make_hecktor(root: Path, n: int = 4) -> Path:
    """HECKTOR 2022 layout: imagesTr/<id>__CT, <id>__PT (a coarser grid), labelsTr/<id> on the CT grid."""
    rows = []
    for k in range(n):
        pid = f"{['CHUM', 'CHUS'][k % 2]}-{k + 1:03d}"
        shape, aff, centre = _subject_ct(k)
        ct, mask = ct_volume(shape, aff, centre, rng=np.random.default_rng(200 + k))
        pet_shape = tuple(s // 2 for s in shape)
        pet_aff = aff.copy()
        pet_aff[:3, :3] *= 2.0
        pet, _ = pet_volume(pet_shape, pet_aff, centre, rng=np.random.default_rng(300 + k))
        save_nifti(root / "imagesTr" / f"{pid}__CT.nii.gz", ct, aff)
        save_nifti(root / "imagesTr" / f"{pid}__PT.nii.gz", pet, pet_aff)
        save_nifti(root / "labelsTr" / f"{pid}.nii.gz", mask, aff)
        rows.append((pid, 40 + 5 * k, k % 2, 300 + 250 * k, (k + 1) % 2))
    (root / "hecktor2022_clinical_info_training.csv").write_text(
        "PatientID,CenterID,Gender,Age,Weight,Tobacco\n"
        + "".join(f"{pid},{1 + k % 2},M,{age},80,{tob}\n" for k, (pid, age, tob, _, _) in enumerate(rows)))
    (root / "hecktor2022_endpoint_training.csv").write_text(
        "PatientID,Relapse,RFS\n" + "".join(f"{pid},{ev},{t}\n" for pid, _, _, t, ev in rows))
    return root


def make_msd(root: Path, n: int = 4) -> Path:
    task = root / "Task06_Lung"
    training = []
    for k in range(n):
        shape, aff, centre = _subject_ct(k + 1)
        ct, mask = ct_volume(shape, aff, centre, rng=np.random.default_rng(400 + k))
        save_nifti(task / "imagesTr" / f"lung_{k:03d}.nii.gz", ct, aff)
        save_nifti(task / "labelsTr" / f"lung_{k:03d}.nii.gz", mask, aff)
        training.append({"image": f"./imagesTr/lung_{k:03d}.nii.gz", "label": f"./labelsTr/lung_{k:03d}.nii.gz"})
    meta = {"name": "Lung", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "cancer"},
            "numTraining": n, "training": training, "test": ["./imagesTs/lung_100.nii.gz"]}
    (task / "dataset.json").write_text(json.dumps(meta, indent=1))
    return task


def _dicom_file(path: Path, pixels: np.ndarray, tags: dict) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = tags["SOPClassUID"]
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def make_dicom_series(folder: Path, volume: np.ndarray, spacing, modality: str, slope: float, intercept: float,
                      extra: dict | None = None) -> Path:
    """One file per slice of ``volume`` (indexed [column x, row y, slice z]); stored = (value - intercept) / slope."""
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid = generate_uid(), generate_uid()
    sop = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" else "1.2.840.10008.5.1.4.1.1.128"
    for z in range(volume.shape[2]):
        stored = np.clip(np.round((volume[:, :, z].T - intercept) / slope), 0, 65535)  # rows = y, columns = x
        tags = {
            "SOPClassUID": sop, "Modality": "PT" if modality == "PET" else "CT", "SeriesInstanceUID": series_uid,
            "StudyInstanceUID": study_uid, "PatientID": folder.name, "InstanceNumber": z + 1,
            "ImagePositionPatient": [-20.0, -15.0, 5.0 + z * spacing[2]], "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
            "PixelSpacing": [spacing[1], spacing[0]], "SliceThickness": spacing[2],
            "RescaleSlope": slope, "RescaleIntercept": intercept, **(extra or {}),
        }
        _dicom_file(folder / f"slice{z:03d}.dcm", stored, tags)
    return folder


def pet_tags(**overrides) -> dict:
    from pydicom.dataset import Dataset

    info = Dataset()
    info.RadionuclideTotalDose = overrides.pop("dose", PET_DOSE_BQ)
    info.RadionuclideHalfLife = F18_HALF_LIFE_S
    info.RadiopharmaceuticalStartTime = overrides.pop("injection", "100000")
    tags = {"Units": "BQML", "DecayCorrection": "START", "PatientWeight": PET_WEIGHT_KG, "SeriesDate": "20240101",
            "SeriesTime": "110000", "AcquisitionTime": "110000", "RadiopharmaceuticalInformationSequence": [info]}
    tags.update(overrides)
    return tags


DICOM_SHAPE, DICOM_SPACING = (12, 10, 8), (1.1, 0.9, 2.5)  # x, y, z


def make_dicom_subject(root: Path, k: int, malignant: int) -> dict[str, Path]:
    """CT (HU, intercept -1024) and PET (Bq/ml, slope 2) series of one subject; its lesion on the slice grid."""
    shape = DICOM_SHAPE
    lesion = np.zeros(shape, dtype=bool)
    size = 2 + 2 * malignant
    lesion[4:4 + size, 3:3 + size, 2:2 + size] = True
    rng = np.random.default_rng(500 + k)
    hu = np.where(body(shape), 40.0, -1000.0) + rng.normal(0, 5, shape)
    hu[lesion] = 300.0
    suv = np.where(body(shape), 1.0, 0.0)
    suv[lesion] = 4.0 + 6.0 * malignant
    activity = suv / PET_SUV_FACTOR  # Bq/ml, so that SUV = activity * factor
    ct = make_dicom_series(root / f"sub{k}" / "ct", hu, DICOM_SPACING, "CT", 1.0, -1024.0)
    pet = make_dicom_series(root / f"sub{k}" / "pet", activity, DICOM_SPACING, "PET", 2.0, 0.0, pet_tags())
    return {"ct": ct, "pet": pet}


def make_lung_manifest(tmp_path: Path, n: int = 3) -> Path:
    """A manifest of ``n`` MSD-like CT studies with masks; the last one in eval."""
    from unicon_bench.data.manifest import write_manifest

    task = make_msd(tmp_path / "msd", n=n)
    rows = [{"subject_id": f"lung_{k:03d}", "modality": "CT", "image": task / "imagesTr" / f"lung_{k:03d}.nii.gz",
             "label": task / "labelsTr" / f"lung_{k:03d}.nii.gz", "split": "eval" if k == n - 1 else "train"}
            for k in range(n)]
    return write_manifest(rows, tmp_path / "manifest.csv")
