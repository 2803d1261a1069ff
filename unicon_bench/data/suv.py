"""PET standardized uptake values (body-weight SUV) from DICOM headers or manifest columns.

SUVbw = activity concentration [Bq/ml] * body weight [g] / decay-corrected injected dose [Bq]

For a series stored in Bq/ml (``Units`` BQML) whose pixels are decay-corrected to the series start
(``DecayCorrection`` START, the usual case), the injected dose is decayed from the injection
(``RadiopharmaceuticalStartDateTime``, else ``RadiopharmaceuticalStartTime`` on the series date) to
the scan start: ``SeriesDateTime``, or the earliest ``AcquisitionDateTime`` of the series when that
is earlier (a post-processed series may carry a later series time). Pixels decay-corrected to the
injection (``ADMIN``) need no decay factor. Series in g/ml (``GML``) are SUV already.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path


class SUVError(ValueError):
    """The headers lack what SUV needs (weight, dose, half-life, times) or hold unusable values."""


def suv_factor(weight_kg: float, dose_bq: float, half_life_s: float, uptake_s: float) -> float:
    """Multiplier from Bq/ml to SUVbw: weight [g] / (dose decayed over ``uptake_s`` seconds)."""
    for name, v in (("patient weight", weight_kg), ("injected dose", dose_bq), ("half-life", half_life_s)):
        if not (math.isfinite(v) and v > 0):
            raise SUVError(f"{name} must be a positive number, got {v}")
    if not math.isfinite(uptake_s):
        raise SUVError(f"uptake time must be a number, got {uptake_s}")
    if uptake_s < 0:
        raise SUVError(f"the scan starts {-uptake_s:.0f} s before the injection")
    return weight_kg * 1000.0 / (dose_bq * 2.0 ** (-uptake_s / half_life_s))


def _datetime(day, time) -> datetime | None:
    """A DICOM DA + TM pair (pydicom value representations) as a datetime."""
    from pydicom.valuerep import DA, TM

    if time in (None, ""):
        return None
    t = TM(time) if isinstance(time, str) else time
    d = DA(day) if isinstance(day, str) and day else day
    return datetime.combine(d if isinstance(d, date) else date(2000, 1, 1), t)


def _dt(value) -> datetime | None:
    from pydicom.valuerep import DT

    if value in (None, ""):
        return None
    v = DT(value) if isinstance(value, str) else value
    return v.replace(tzinfo=None)


def _required(ds, keyword: str, where: str = ""):
    value = getattr(ds, keyword, None)
    if value in (None, ""):
        raise SUVError(f"missing DICOM tag {keyword}{where}")
    return value


def suv_factor_from_headers(headers: list) -> float:
    """SUVbw multiplier of a PET series from its pydicom datasets (one per slice, pixels not needed)."""
    if not headers:
        raise SUVError("no DICOM slices")
    ds = headers[0]
    units = str(getattr(ds, "Units", "") or "BQML").upper()
    if units == "GML":
        return 1.0
    if units != "BQML":
        raise SUVError(f"PET Units {units} cannot be converted to SUV (BQML or GML expected)")
    weight = float(_required(ds, "PatientWeight"))
    seq = _required(ds, "RadiopharmaceuticalInformationSequence")
    if len(seq) == 0:
        raise SUVError("empty RadiopharmaceuticalInformationSequence")
    info, where = seq[0], " in RadiopharmaceuticalInformationSequence"
    dose = float(_required(info, "RadionuclideTotalDose", where))
    half_life = float(_required(info, "RadionuclideHalfLife", where))
    correction = str(getattr(ds, "DecayCorrection", "") or "START").upper()
    if correction == "ADMIN":
        return suv_factor(weight, dose, half_life, 0.0)
    if correction != "START":
        raise SUVError(f"DecayCorrection {correction} is not supported (START or ADMIN expected)")
    day = getattr(ds, "SeriesDate", "") or getattr(ds, "AcquisitionDate", "")
    injected = _dt(getattr(info, "RadiopharmaceuticalStartDateTime", None)) or _datetime(
        day, _required(info, "RadiopharmaceuticalStartTime", where)
    )
    series = _datetime(day, getattr(ds, "SeriesTime", None))
    acquired = [
        t for h in headers
        if (t := _dt(getattr(h, "AcquisitionDateTime", None))
            or _datetime(getattr(h, "AcquisitionDate", "") or day, getattr(h, "AcquisitionTime", None)))
    ]
    starts = [t for t in (series, min(acquired, default=None)) if t is not None]
    if not starts:
        raise SUVError("missing DICOM tags SeriesTime and AcquisitionTime (the scan start)")
    start = min(starts)
    uptake = (start - injected).total_seconds()
    if uptake < -43200 and not getattr(info, "RadiopharmaceuticalStartDateTime", None):
        uptake += timedelta(days=1).total_seconds()  # an injection time without date, before midnight
    return suv_factor(weight, dose, half_life, uptake)


def dicom_headers(folder: Path) -> list:
    """The pydicom datasets (without pixel data) of the DICOM files in a series folder or one file."""
    import pydicom

    files = [folder] if folder.is_file() else sorted(p for p in folder.iterdir() if p.is_file())
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in files if pydicom.misc.is_dicom(p)]
