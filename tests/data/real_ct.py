"""A real head CT for the tests: Debian's ``invesalius-examples`` (GPL-2) ships ``Cranium.inv3``, an
InVesalius project (a gzip tar): ``main.plist`` (shape, dtype, spacing in mm, x y z), ``matrix.dat``
(int16 HU, 108 axial slices of 256 x 256, stored [slice, row, column]) and threshold masks.

``write_study`` converts it into what a user brings (NIfTI files and DICOM series of the same world
geometry), a bone label (HU >= 226, the threshold of the project's bone mask ``mask_0``), a manifest
and a scenario YAML as the README's "Use your own data" documents. Run as a script it writes the
study folder the README's memory figures were measured on::

    python tests/data/real_ct.py /tmp/cranium            # then: unicon-bench data check /tmp/cranium/manifest.csv
"""

from __future__ import annotations

import os
import plistlib
import sys
import tarfile
from pathlib import Path

import numpy as np

# where the Debian package puts it; .ci/run points UNICON_BENCH_REAL_CT at the file unpacked from the .deb
# where dpkg leaves /usr/share/doc out (slim images)
CRANIUM = Path(os.environ.get("UNICON_BENCH_REAL_CT", "/usr/share/doc/invesalius-examples/examples/Cranium.inv3"))
BONE_HU = 226  # lower bound of Cranium.inv3's bone mask (mask_0.plist: threshold_range 226 .. 3071)
ORIGIN_LPS = (-122.0, -122.0, -80.0)  # mm: the head centred on the scanner axis (any origin would do)


def read_inv3(path: Path = CRANIUM) -> tuple[np.ndarray, tuple[float, float, float]]:
    """``(hu, spacing)``: HU as int16 indexed [x column, y row, z slice], spacing (x, y, z) in mm."""
    with tarfile.open(path, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        main = plistlib.loads(tar.extractfile(members["main.plist"]).read())
        matrix = main["matrix"]
        raw = tar.extractfile(members[matrix["filename"]]).read()
    slices = np.frombuffer(raw, dtype=np.dtype(matrix["dtype"]).newbyteorder("<")).reshape(matrix["shape"])
    spacing = tuple(round(float(s), 6) for s in main["spacing"])  # 0.957031 mm: DICOM's DS holds 16 characters
    return np.ascontiguousarray(slices.transpose(2, 1, 0)), spacing


def ras_affine(spacing, origin_lps) -> np.ndarray:
    """The NIfTI (RAS) affine of an axial DICOM series with ImageOrientationPatient 1\\0\\0\\0\\1\\0 whose first
    voxel is at ``origin_lps``: x and y flip sign between LPS and RAS, z does not."""
    aff = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    aff[:3, 3] = (-origin_lps[0], -origin_lps[1], origin_lps[2])
    return aff


def write_dicom_series(folder: Path, hu: np.ndarray, spacing, origin_lps, patient: str) -> Path:
    """One CT slice file per z (int16 HU stored as uint16 with RescaleIntercept -1024)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series, study = generate_uid(), generate_uid()
    for z in range(hu.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "CT", patient, study, series
        ds.InstanceNumber = z + 1
        ds.ImagePositionPatient = [origin_lps[0], origin_lps[1], round(origin_lps[2] + z * spacing[2], 4)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[0]]  # row spacing (y), column spacing (x)
        ds.SliceThickness = spacing[2]
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = (hu[:, :, z].T.astype(np.int32) + 1024).astype("<u2").tobytes()  # rows = y, columns = x
        ds.save_as(folder / f"slice{z:03d}.dcm", enforce_file_format=True)
    return folder


def write_nifti(path: Path, volume: np.ndarray, aff: np.ndarray) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(volume, aff), str(path))
    return path


SCENARIO = """\
name: cranium_bone
version: 1
kind: domain
description: "Bone segmentation on a real head CT (InVesalius' Cranium.inv3): NIfTI, then the same CT as a DICOM series"
task_identity_at_test: false
experiences:
  - {{name: nifti, modality: CT, task: segmentation, site: nifti}}
  - {{name: dicom, modality: CT, task: segmentation, site: dicom}}
data:
  source: manifest
  manifest: manifest.csv
{spacing}  shape: {shape}
  crop: body
  ct_window: [-1000, 2000]
{patch}train: {{epochs: {epochs}, batch_size: 1, lr: 0.01, eval_batch_size: 1}}
quick: {{n_train: 1, n_eval: 1, shape: {shape}, epochs: {epochs}}}
"""


def write_study(out: Path, spacing_mm: float | None = 4.0, shape=(64, 64, 32), epochs: int = 10,
                patch=None) -> dict[str, Path]:
    """Two subjects from the one CT (its lower and upper 54 slices), each as NIfTI and as a DICOM series,
    a bone label per subject, ``manifest.csv`` (site nifti / dicom; lower half train, upper half eval) and
    ``scenario.yaml`` (resampled to ``spacing_mm``, or native resolution when None; training on
    ``patch``-sized patches when given)."""
    from unicon_bench.data.manifest import write_manifest

    hu, spacing = read_inv3()
    half = hu.shape[2] // 2
    rows, paths = [], {}
    for part, (z0, z1), split in (("lower", (0, half), "train"), ("upper", (half, hu.shape[2]), "eval")):
        slab = hu[:, :, z0:z1]
        origin = (ORIGIN_LPS[0], ORIGIN_LPS[1], ORIGIN_LPS[2] + z0 * spacing[2])
        aff = ras_affine(spacing, origin)
        label = write_nifti(out / "labels" / f"{part}_bone.nii.gz", (slab >= BONE_HU).astype(np.uint8), aff)
        nifti = write_nifti(out / "nifti" / f"{part}.nii.gz", slab, aff)
        dicom = write_dicom_series(out / "dicom" / part, slab, spacing, origin, f"cranium_{part}")
        paths.update({f"{part}_nifti": nifti, f"{part}_dicom": dicom, f"{part}_label": label})
        for site, image in (("nifti", nifti), ("dicom", dicom)):
            rows.append({"subject_id": f"cranium_{part}_{site}", "modality": "CT", "image": image, "label": label,
                         "split": split, "site": site})
    paths["manifest"] = write_manifest(rows, out / "manifest.csv")
    spacing_line = "" if spacing_mm is None else f"  spacing: [{spacing_mm}, {spacing_mm}, {spacing_mm}]\n"
    paths["scenario"] = out / "scenario.yaml"
    patch_line = "" if patch is None else f"  patch: {list(patch)}\n"
    paths["scenario"].write_text(SCENARIO.format(spacing=spacing_line, shape=list(shape), epochs=epochs, patch=patch_line),
                                 encoding="utf-8")
    return paths


if __name__ == "__main__":
    native = "--native" in sys.argv
    target = Path(next(a for a in sys.argv[1:] if not a.startswith("--")))
    # --native: no resampling, the whole 256 x 256 x 54-slice slab (padded to a multiple of 16) per study,
    # trained on 64 x 64 x 32 patches and evaluated by sliding window
    found = write_study(target, None, (256, 256, 64), 2, (64, 64, 32)) if native else write_study(target)
    print("\n".join(f"{k}: {v}" for k, v in found.items()))
