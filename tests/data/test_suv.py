"""PET SUV from DICOM tags (pydicom) against hand-derived values, and a PET DICOM series read as SUV."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydicom.dataset import Dataset

from studies_factory import DICOM_SHAPE, PET_SUV_FACTOR, body, make_dicom_series, make_dicom_subject, pet_tags
from unicon_bench.data.manifest import Row
from unicon_bench.data.suv import SUVError, dicom_headers, suv_factor, suv_factor_from_headers
from unicon_bench.data.volumes import StudyError, load_study


def header(**overrides) -> Dataset:
    ds = Dataset()
    for key, value in pet_tags(**overrides).items():
        setattr(ds, key, value)
    return ds


def test_suv_factor_start_decay_matches_hand_derivation():
    # 70 kg, 370 MBq at 10:00:00, series at 11:00:00, F-18 half-life 6586.2 s: see studies_factory.
    assert suv_factor_from_headers([header()]) == pytest.approx(PET_SUV_FACTOR, rel=1e-5)
    # 5000 Bq/ml in that scan: 5000 * 2.76337e-4 = 1.38168 SUV
    assert 5000 * suv_factor_from_headers([header()]) == pytest.approx(1.38168, rel=1e-5)


def test_suv_factor_variants():
    # decay-corrected to the injection: no decay factor, 70 000 / 3.7e8 = 1.89189e-4
    assert suv_factor_from_headers([header(DecayCorrection="ADMIN")]) == pytest.approx(1.89189e-4, rel=1e-5)
    assert suv_factor_from_headers([header(Units="GML")]) == 1.0
    # injected 23:30, scanned 00:30 the next day: still one hour of decay
    late = header(injection="233000", SeriesTime="003000", AcquisitionTime="003000")
    assert suv_factor_from_headers([late]) == pytest.approx(PET_SUV_FACTOR, rel=1e-5)
    # a post-processed series whose SeriesTime is later than the acquisition: the acquisition counts
    reprocessed = header(SeriesTime="140000", AcquisitionTime="110000")
    assert suv_factor_from_headers([reprocessed]) == pytest.approx(PET_SUV_FACTOR, rel=1e-5)
    # half an hour uptake: 1800 / 6586.2 = 0.273299 half-lives, 2 ** -0.273299 = 0.827425,
    # 70 000 / (3.7e8 * 0.827425) = 2.28648e-4
    half_hour = header(SeriesTime="103000", AcquisitionTime="103000")
    assert suv_factor_from_headers([half_hour]) == pytest.approx(2.28648e-4, rel=1e-5)
    assert suv_factor(70, 3.7e8, 6586.2, 0.0) == pytest.approx(70000 / 3.7e8)


@pytest.mark.parametrize("overrides, needle", [
    ({"PatientWeight": None}, "PatientWeight"),
    ({"dose": None}, "RadionuclideTotalDose"),
    ({"Units": "CNTS"}, "Units CNTS"),
    ({"DecayCorrection": "NONE"}, "DecayCorrection NONE"),
    ({"injection": "120000"}, "before the injection"),
])
def test_suv_factor_errors(overrides, needle):
    with pytest.raises(SUVError, match=needle):
        suv_factor_from_headers([header(**overrides)])


def test_pet_dicom_series_loads_in_suv(tmp_path):
    paths = make_dicom_subject(tmp_path, 0, malignant=1)
    assert len(dicom_headers(paths["pet"])) == 8
    study = load_study(Row(1, "sub0", "PET", paths["pet"], "train"))
    image = study["image"].numpy()[0]
    # the lesion was written as SUV 10 (Bq/ml = 10 / factor, stored / slope 2), the body as SUV 1
    assert image.max() == pytest.approx(10.0, abs=1e-3)
    expected = np.where(body(DICOM_SHAPE), 1.0, 0.0)
    expected[image > 5] = 10.0
    assert np.abs(image - expected).max() < 1e-3  # stored integers: rounding of 1 Bq/ml in 3619
    ct = load_study(Row(2, "sub0", "CT", paths["ct"], "train"))["image"].numpy()[0]
    assert ct.max() == pytest.approx(300.0) and -1030 < ct.min() < -980  # HU after RescaleIntercept -1024


def test_pet_dicom_series_without_weight_is_one_clear_error(tmp_path):
    tags = pet_tags()
    del tags["PatientWeight"]
    folder = make_dicom_series(tmp_path / "pet", np.ones((6, 5, 3)) * 1000, (2.0, 2.0, 3.0), "PET", 1.0, 0.0, tags)
    with pytest.raises(StudyError, match="cannot compute SUV: missing DICOM tag PatientWeight") as info:
        load_study(Row(1, "p", "PET", folder, "train"))
    assert str(folder) in str(info.value)


def test_nifti_pet_in_bqml_uses_the_row_columns(tmp_path):
    from studies_factory import affine, save_nifti

    path = save_nifti(tmp_path / "pet.nii.gz", np.full((4, 4, 4), 5000.0, np.float32), affine((2, 2, 2)))
    extra = {"patient_weight_kg": "70", "injected_dose_bq": "3.7e8", "half_life_s": "6586.2", "uptake_time_s": "3600"}
    row = Row(1, "p", "PET", path, "train", extra=extra)
    image = load_study(row, nifti_pet_units="bqml")["image"].numpy()
    assert image == pytest.approx(1.38168, rel=1e-5)
    assert math.isclose(float(load_study(row)["image"].max()), 5000.0)  # default: NIfTI already SUV
