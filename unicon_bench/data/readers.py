"""MONAI's image readers with bounded memory, and the slice of a DICOM series that cannot be read.

``ScaledNibabelReader`` is MONAI's ``NibabelReader`` except for how the voxels of a NIfTI file with
``scl_slope``/``scl_inter`` are scaled: nibabel scales in float64 (8 bytes a voxel, then MONAI's
float32 copy beside it); here the stored integers are scaled in place in float32, so a volume costs
its stored size plus 4 bytes a voxel. Unscaled files are returned as stored (int16 CT stays int16
until ``LoadImage`` converts it once).

``LeanPydicomReader`` is MONAI's ``PydicomReader`` that frees each slice's stored bytes once read.

``bad_slice(folder)`` names the first file of a DICOM series whose header or pixel data cannot be
read (a truncated or damaged slice), for the error message of a series that fails to load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from monai.data import NibabelReader, PydicomReader


class ScaledNibabelReader(NibabelReader):
    """``NibabelReader`` scaling stored values in float32 (never a float64 copy of the volume)."""

    def _get_array_data(self, img, filename):
        proxy = img.dataobj
        slope, inter = (float(getattr(proxy, "slope", 1.0)), float(getattr(proxy, "inter", 0.0)))
        if not hasattr(proxy, "get_unscaled") or (slope, inter) == (1.0, 0.0):
            return super()._get_array_data(img, filename)
        data = np.asarray(proxy.get_unscaled()).astype(np.float32)  # one float32 array, scaled in place
        if slope != 1.0:
            data *= np.float32(slope)
        if inter != 0.0:
            data += np.float32(inter)
        return data


class LeanPydicomReader(PydicomReader):
    """``PydicomReader`` that lets each slice's stored bytes and decoded array go once the slice is in
    float32 (MONAI keeps every dataset of the series, its pixel data and its cached array, until the
    series is stacked)."""

    def _get_array_data(self, img, filename):
        data = super()._get_array_data(img, filename)
        if "PixelData" in img:
            del img.PixelData  # pydicom drops its cached pixel_array with it
        return data


def bad_slice(folder: Path) -> str | None:
    """``"<file>: <why>"`` for the first file of ``folder`` that pydicom cannot read or decode, else None.
    Files without pixel data (a DICOMDIR, a report) are not slices and are passed over."""
    import pydicom

    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(str(path))
            if "PixelData" in ds:
                ds.pixel_array  # noqa: B018 - decoding is the check
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for a damaged file
            return f"{path.name}: {type(exc).__name__}: {' '.join(str(exc).split()) or 'no details'}"[:300]
    return None
