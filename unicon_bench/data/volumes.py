"""Reading the studies of a manifest through MONAI: NIfTI with nibabel, DICOM series with pydicom.

``load_study`` is what both the training pipeline and ``unicon-bench data check`` use: it reads the
image (PET scaled to SUV) and the mask of one manifest row and checks them (readable, finite voxels,
mask on the image's grid). Any problem is a :class:`StudyError` naming the file (for a DICOM series
that fails to load, the slice at fault).

Memory stays bounded by the volume itself: images are read once as float32 (NIfTI scaling in
float32, ``readers.ScaledNibabelReader``), masks in their stored type (uint8 is a quarter of
float32), and every whole-volume check (NaN/Inf, value range, lesion voxels) runs in blocks of
``BLOCK_VOXELS`` (``volume_stats``) instead of making whole-volume temporaries.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unicon_bench.data.manifest import Row, is_nifti
from unicon_bench.data.suv import SUVError, dicom_headers, suv_factor, suv_factor_from_headers

AFFINE_TOLERANCE_MM = 1e-2


class StudyError(ValueError):
    """A study file that cannot be used; the message names the file."""

    def __init__(self, path: Path, message: str):
        self.path = path
        super().__init__(f"{path}: {message}")


# The largest volume read: 2**30 voxels (4 GiB as float32; a 512 x 512 x 4096 CT). A header that
# claims more is refused before any voxel is read (a 75-byte file can claim terabytes).
MAX_VOXELS = 2**30


def _regular(path: Path) -> None:
    """Refuse what is not a regular file (a FIFO would block the reader forever, a device never end)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise StudyError(path, f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise StudyError(path, "not a regular file (a pipe, device or socket cannot be a volume)")


def _check_size(path: Path, shape, what: str) -> None:
    voxels = math.prod(int(s) for s in shape)
    if voxels > MAX_VOXELS:
        raise StudyError(path, f"{what} claims {' x '.join(str(int(s)) for s in shape)} = {voxels:,} voxels, more than the "
                               f"{MAX_VOXELS:,} a volume may have; refused before reading")


def check_volume_header(path: Path) -> None:
    """Refuse non-regular files and volumes whose header claims more than ``MAX_VOXELS``, reading headers only."""
    if is_nifti(path):
        import nibabel as nib

        _regular(path)
        try:
            header = nib.load(str(path)).header  # the image data is not read
        except Exception as exc:  # noqa: BLE001 - nibabel and gzip raise many kinds for a damaged header
            raise StudyError(path, f"cannot read the NIfTI header: {type(exc).__name__}: {exc}"[:400]) from None
        _check_size(path, header.get_data_shape(), "the NIfTI header")
        return
    files = sorted(p for p in path.iterdir()) if path.is_dir() else [path]
    for f in files:
        _regular(f)
    if not files:
        raise StudyError(path, "an empty DICOM folder")
    import pydicom

    for f in files:  # the first slice with an image header sizes the series (the reader judges the rest)
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
            shape = (int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames", 1) or 1) * len(files))
        except Exception:  # noqa: BLE001 - not an image slice (DICOMDIR, a note, a damaged file)
            continue
        _check_size(path, shape, "the DICOM series")
        return


def load_volume(path: Path, dtype=np.float32):
    """The volume at ``path`` as a channel-first MONAI MetaTensor (affine in RAS world coordinates);
    ``dtype=None`` keeps the stored type (masks)."""
    check_volume_header(path)
    from monai.transforms import LoadImage

    from unicon_bench.data.readers import LeanPydicomReader, ScaledNibabelReader, bad_slice

    # MONAI logs a warning per DICOM read when the (GPU) nvImageCodec decoder is absent: not news here.
    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    reader = ScaledNibabelReader() if is_nifti(path) else LeanPydicomReader()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = LoadImage(reader=reader, image_only=True, ensure_channel_first=True, dtype=dtype)(str(path))
    except Exception as exc:  # nibabel, pydicom and zlib raise many kinds; all mean "unreadable"
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        slice_at_fault = bad_slice(path) if path.is_dir() else None
        if slice_at_fault:
            raise StudyError(path, f"cannot read slice {slice_at_fault}") from None
        raise StudyError(path, f"cannot read: {type(cause).__name__}: {str(cause).strip() or 'no details'}"[:400]) from None
    if image.ndim != 4 or image.shape[0] != 1:
        raise StudyError(path, f"expected one 3D volume, got array shape {tuple(image.shape)}")
    return image


def row_suv_factor(row: Row, nifti_pet_units: str = "suv") -> float:
    """Multiplier that turns the row's PET voxels into SUVbw (1 for CT and SUV NIfTI)."""
    if row.modality != "PET":
        return 1.0
    try:
        if not is_nifti(row.image):
            return suv_factor_from_headers(dicom_headers(row.image))
        if nifti_pet_units == "suv":
            return 1.0
        return suv_factor(row.number_of("patient_weight_kg"), row.number_of("injected_dose_bq"),
                          row.number_of("half_life_s"), row.number_of("uptake_time_s"))
    except SUVError as exc:
        raise StudyError(row.image, f"cannot compute SUV: {exc}") from None
    except OSError as exc:
        raise StudyError(row.image, f"cannot read DICOM headers: {exc}") from None


BLOCK_VOXELS = 1 << 22  # whole-volume checks read this many voxels at a time (16 MiB of float32)


def volume_stats(volume) -> tuple[int, float, float, int]:
    """``(NaN/Inf voxels, min, max of the finite ones (NaN when none), voxels > 0)`` of a channel-first
    volume, in blocks of whole last-axis slices: no temporary is larger than a block."""
    array = volume.numpy() if hasattr(volume, "numpy") else np.asarray(volume)
    step = max(1, BLOCK_VOXELS // max(1, math.prod(array.shape[:-1])))
    nonfinite, positive, lo, hi = 0, 0, math.inf, -math.inf
    exact = not np.issubdtype(array.dtype, np.floating)
    for k in range(0, array.shape[-1], step):
        block = array[..., k:k + step]
        if not exact:
            finite = np.isfinite(block)
            bad = int(block.size - np.count_nonzero(finite))
            nonfinite, block = nonfinite + bad, block[finite] if bad else block
        if block.size:
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
        positive += int(np.count_nonzero(block > 0))
    return nonfinite, (lo if lo <= hi else math.nan), (hi if lo <= hi else math.nan), positive


def _finite(volume, path: Path) -> None:
    bad = volume_stats(volume)[0]
    if bad:
        raise StudyError(path, f"{bad} NaN/Inf voxel(s) of {volume.numel()}")


def geometry_problem(image, label) -> str | None:
    """Why the mask does not lie on the image's voxel grid (None when it does)."""
    if tuple(image.shape[1:]) != tuple(label.shape[1:]):
        return f"label shape {tuple(label.shape[1:])} differs from image shape {tuple(image.shape[1:])}"
    diff = float(np.abs(np.asarray(image.affine) - np.asarray(label.affine)).max())
    if diff > AFFINE_TOLERANCE_MM:
        return f"label affine differs from the image's by up to {diff:.3g} mm"
    return None


def wants_resample(row: Row) -> bool:
    return row.extra.get("resample_label", "").lower() in ("1", "true", "yes")


def load_study(row: Row, nifti_pet_units: str = "suv", foreground: list[int] | None = None) -> dict:
    """``{"image", "label"}`` MetaTensors of one row: image in HU or SUV, label a 0/1 lesion mask
    (zeros when the row has none). Raises :class:`StudyError` naming the offending file."""
    image = load_volume(row.image)
    _finite(image, row.image)
    factor = row_suv_factor(row, nifti_pet_units)
    if factor != 1.0:
        image = image * factor
    if row.label is None:
        return {"image": image, "label": image * 0}
    label = load_volume(row.label, dtype=None)  # uint8 masks stay uint8 until the 0/1 float mask
    _finite(label, row.label)
    problem = geometry_problem(image, label)
    if problem and not wants_resample(row):
        raise StudyError(row.label, f"{problem} of {row.image} (a mask on another grid of the same patient "
                                    "needs resample_label=1 in the row)")
    if problem:
        from monai.transforms import ResampleToMatch

        label = ResampleToMatch(mode="nearest")(label.float(), image)
    import torch

    mask = torch.isin(label, torch.tensor(foreground, dtype=label.dtype)) if foreground else label > 0
    return {"image": image, "label": mask.float()}  # a MetaTensor still: the affine stays


@dataclass
class RowReport:
    """What ``unicon-bench data check`` prints for one manifest row."""

    row: Row
    problems: list[str] = field(default_factory=list)
    shape: tuple[int, ...] | None = None
    spacing: tuple[float, ...] | None = None
    geometry: str = "-"
    value_range: tuple[float, float] | None = None
    nonfinite: int = 0
    lesion_voxels: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def inspect_row(row: Row, nifti_pet_units: str = "suv") -> RowReport:
    """Open every file of ``row`` and report shape, spacing, geometry, value range and NaN/Inf."""
    from monai.data.utils import affine_to_spacing

    report = RowReport(row)
    missing = [p for p in (row.image, row.label) if p is not None and not p.exists()]
    if missing:
        report.problems.extend(f"{p}: file not found" for p in missing)
        return report
    try:
        image = load_volume(row.image)
    except StudyError as exc:
        report.problems.append(str(exc))
        return report
    report.shape = tuple(int(s) for s in image.shape[1:])
    report.spacing = tuple(round(float(s), 3) for s in affine_to_spacing(image.affine, r=3))
    report.nonfinite, lo, hi, _ = volume_stats(image)
    if report.nonfinite:
        report.problems.append(f"{row.image}: {report.nonfinite} NaN/Inf voxel(s)")
    try:
        factor = row_suv_factor(row, nifti_pet_units)
    except StudyError as exc:
        report.problems.append(str(exc))
        factor = 1.0
    if not math.isnan(lo):
        report.value_range = (lo * factor, hi * factor)
    if row.label is None:
        return report
    try:
        label = load_volume(row.label, dtype=None)
    except StudyError as exc:
        report.problems.append(str(exc))
        report.geometry = "unreadable"
        return report
    label_nonfinite, _, _, report.lesion_voxels = volume_stats(label)
    if label_nonfinite:
        report.problems.append(f"{row.label}: NaN/Inf voxel(s) in the label")
    problem = geometry_problem(image, label)
    report.geometry = "match" if problem is None else ("resampled" if wants_resample(row) else "MISMATCH")
    if problem and not wants_resample(row):
        report.problems.append(f"{row.label}: {problem}")
    return report


def spacing_text(spacing: tuple[float, ...] | None) -> str:
    return "-" if spacing is None else "x".join(f"{s:g}" for s in spacing)


def range_text(value_range: tuple[float, float] | None) -> str:
    if value_range is None:
        return "-"
    lo, hi = value_range
    return f"{lo:.4g} .. {hi:.4g}" if math.isfinite(lo) and math.isfinite(hi) else "-"
