"""The generator: deterministic patients, vendor headers, planted PHI everywhere it claims, neutral file names."""

import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless

from apps.imaging import synthetic


def test_patients_are_deterministic_and_distinct():
    assert synthetic.make_patient(0, 1, seed=5) == synthetic.make_patient(0, 1, seed=5)
    assert synthetic.make_patient(0, 1, seed=5).patient_id != synthetic.make_patient(1, 1, seed=5).patient_id
    assert synthetic.make_patient(0, 1, seed=5).name != synthetic.make_patient(0, 2, seed=5).name


@pytest.mark.parametrize("site_index", [0, 1, 2])
def test_study_layout_and_neutral_file_names(synthetic_studies, site_index):
    patient, files = synthetic_studies[site_index]
    assert len(files) == 12 + 12 + 16
    assert [f"{p.parent.name}/{p.name}" for p in files[:2]] == ["01/IM0001.dcm", "01/IM0002.dcm"]
    names = " ".join(str(p.relative_to(p.parents[2])) for p in files).lower()
    assert not [v for v in synthetic.planted_phi_values(patient) if v.lower() in names]


@pytest.mark.parametrize("site_index", [0, 1, 2])
def test_every_planted_value_is_really_in_the_headers(synthetic_studies, site_index):
    patient, files = synthetic_studies[site_index]
    study = b"".join(path.read_bytes() for path in files).lower()
    missing = [v for v in synthetic.planted_phi_values(patient) if v.lower().encode("latin-1") not in study]
    assert not missing


@pytest.mark.parametrize("site_index", [0, 1, 2])
def test_vendor_headers_private_blocks_and_nested_phi(synthetic_studies, site_index):
    patient, files = synthetic_studies[site_index]
    site = synthetic.SITE_PROFILES[site_index]
    ds = pydicom.dcmread(files[-1])
    assert ds.Manufacturer == site.manufacturer
    assert float(ds.MagneticFieldStrength) == site.field_strength
    assert ds.SOPInstanceUID.startswith(site.uid_root)
    for group, creator in site.private_blocks:
        block = ds.private_block(group, creator)
        assert patient.patient_id == block[0x11].value
    assert ds.RequestAttributesSequence[0].ScheduledProcedureStepStartDate == patient.scheduled_date
    assert patient.name.split("^")[0] in ds.ProcedureCodeSequence[0].CodeMeaning
    assert ds.ContrastBolusAgent == site.contrast_agent
    assert ds.MRAcquisitionType == "3D"
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == pydicom.dcmread(files[0]).SOPInstanceUID
    assert ds.file_meta.SourceApplicationEntityTitle == site.station_name


def test_geometry_and_series_structure(synthetic_studies):
    _, files = synthetic_studies[0]
    datasets = [pydicom.dcmread(path) for path in files]
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 3
    assert len({ds.FrameOfReferenceUID for ds in datasets}) == 1
    t2 = [ds for ds in datasets if ds.SeriesNumber == 1]
    heights = [float(ds.ImagePositionPatient[2]) for ds in t2]
    assert heights == sorted(heights) and len(set(heights)) == len(heights)
    assert [ds.InstanceNumber for ds in t2] == list(range(1, len(t2) + 1))


def test_images_have_a_brain_a_lesion_and_rician_noise(tmp_path):
    patient = synthetic.make_patient(0, 1, seed=21)
    files = synthetic.write_study(tmp_path, patient, seed=21, sequences=("T1W_POST",))
    volume = np.stack([pydicom.dcmread(path).pixel_array for path in files]).astype(float)
    assert volume.max() < 4096 and volume.max() > 500
    corner = volume[:, :4, :4]
    assert 0 < corner.mean() < 0.1 * volume.max(), "a magnitude background is Rayleigh, never exactly zero"
    assert corner.std() > 0


def test_compressed_output(tmp_path):
    patient = synthetic.make_patient(2, 1, seed=4)
    files = synthetic.write_study(tmp_path, patient, seed=4, sequences=("T2W",),
                                  transfer_syntax=RLELossless)
    ds = pydicom.dcmread(files[0])
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    assert ds.pixel_array.shape == (64, 64)


def test_unsupported_transfer_syntax_is_refused(tmp_path):
    with pytest.raises(ValueError):
        synthetic.write_study(tmp_path, synthetic.make_patient(0, 1, 1), transfer_syntax="1.2.840.10008.1.2.4.50")
