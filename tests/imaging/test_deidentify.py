"""De-identification: planted PHI gone everywhere, UIDs consistent, dates shifted or removed, options declared."""

import datetime as dt
import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage

from apps.imaging import deidentify, synthetic

SECRET = "test-deployment-secret"
SHIFT = -123


def _deidentify_bytes(path: Path, *, shift: int | None = SHIFT, case_code: str = "RS-0001") -> tuple[bytes, Dataset]:
    ds = pydicom.dcmread(path)
    deidentify.deidentify_dataset(ds, case_code=case_code, date_shift_days=shift, uid_secret=SECRET)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    return data, pydicom.dcmread(io.BytesIO(data))


def _walk(ds: Dataset):
    for element in ds:
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from _walk(item)


@pytest.mark.parametrize("shift", [SHIFT, None], ids=["shift", "remove"])
@pytest.mark.parametrize("site_index", [0, 1, 2])
def test_no_planted_phi_survives_anywhere(synthetic_studies, site_index, shift):
    patient, files = synthetic_studies[site_index]
    planted = [value.lower().encode("latin-1") for value in synthetic.planted_phi_values(patient)]
    for path in files:
        original = path.read_bytes().lower()
        assert all(value in original for value in planted[:3]), "the generator must plant PHI"
        data, _ = _deidentify_bytes(path, shift=shift)
        lowered = data.lower()
        leaked = [value for value in planted if value in lowered]
        assert not leaked, f"{path.name}: {leaked}"


def test_private_elements_and_identity_removed_at_every_depth(synthetic_studies):
    _, files = synthetic_studies[0]
    _, ds = _deidentify_bytes(files[0])
    assert not [e.tag for e in _walk(ds) if e.tag.is_private]
    assert ds.PatientName == "RS-0001" and ds.PatientID == "RS-0001"
    assert ds.PatientIdentityRemoved == "YES"
    assert "PatientBirthDate" not in ds or not ds.PatientBirthDate
    assert "RequestAttributesSequence" not in ds
    assert ds.ProcedureCodeSequence[0].CodeMeaning == ""
    assert "SourceApplicationEntityTitle" not in ds.file_meta


def test_uids_remapped_consistently_across_a_study(synthetic_studies):
    _, files = synthetic_studies[1]
    originals = [pydicom.dcmread(path) for path in files]
    results = [_deidentify_bytes(path) for path in files]
    cleaned = [ds for _, ds in results]

    assert len({ds.StudyInstanceUID for ds in cleaned}) == 1
    assert len({ds.FrameOfReferenceUID for ds in cleaned}) == 1
    assert len({ds.SOPInstanceUID for ds in cleaned}) == len(files)
    for original, ds in zip(originals, cleaned, strict=True):
        assert ds.StudyInstanceUID == deidentify.remap_uid(original.StudyInstanceUID, SECRET)
        assert ds.SeriesInstanceUID == deidentify.remap_uid(original.SeriesInstanceUID, SECRET)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPClassUID == MRImageStorage
        assert UID(ds.SOPInstanceUID).is_valid
    first_t2 = cleaned[0]
    later = [ds for ds in cleaned if "ReferencedImageSequence" in ds]
    assert later, "the generator references the first T2W image from the other series"
    for ds in later:
        assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == first_t2.SOPInstanceUID
    original_uids = {o.StudyInstanceUID.encode() for o in originals} | {o.SOPInstanceUID.encode() for o in originals}
    for data, _ in results:
        assert not [uid for uid in original_uids if uid in data]


def test_remap_uid_is_keyed_deterministic_and_valid():
    uid = "1.3.12.2.1107.5.2.43.166038.30000022071106543210900000012"
    first = deidentify.remap_uid(uid, "a")
    assert first == deidentify.remap_uid(uid, "a")
    assert first != deidentify.remap_uid(uid, "b")
    assert first != deidentify.remap_uid(uid + "1", "a")
    assert first.startswith("2.25.") and len(first) <= 64 and UID(first).is_valid


def test_patient_key_is_a_keyed_hash_per_site():
    key = deidentify.patient_key("PID123", "SITEA", "s")
    assert key == deidentify.patient_key(" PID123 ", "SITEA", "s")
    assert key != deidentify.patient_key("PID123", "SITEB", "s")
    assert key != deidentify.patient_key("PID123", "SITEA", "t")
    assert len(key) == 64 and "PID123" not in key


def test_dates_shift_consistently_at_every_depth():
    ds = _minimal_dataset()
    ds.StudyDate = "20230314"
    ds.AcquisitionDateTime = "20230314101500.123456+0100"
    ds.StudyTime = "101500"
    frame = Dataset()
    frame.FrameAcquisitionDateTime = "20230314101501"
    group = Dataset()
    group.FrameContentSequence = [frame]
    ds.PerFrameFunctionalGroupsSequence = [group]
    deidentify.deidentify_dataset(ds, case_code="C1", date_shift_days=-30, uid_secret=SECRET)
    expected = (dt.date(2023, 3, 14) - dt.timedelta(days=30)).strftime("%Y%m%d")
    assert ds.StudyDate == expected
    assert ds.AcquisitionDateTime == expected + "101500.123456+0100"
    assert ds.StudyTime == "101500"
    nested = ds.PerFrameFunctionalGroupsSequence[0].FrameContentSequence[0]
    assert nested.FrameAcquisitionDateTime == expected + "101501"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113105", "113107"]


def test_remove_mode_leaves_no_date_or_time(synthetic_studies):
    _, files = synthetic_studies[2]
    _, ds = _deidentify_bytes(files[-1], shift=None)
    temporal = [e for e in _walk(ds) if e.VR in ("DA", "DT", "TM") and e.value]
    assert not temporal
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == ["113100", "113105"]


def test_partial_dates_are_blanked_rather_than_kept():
    assert deidentify.shift_date("2023", 5) == ""
    assert deidentify.shift_date("20230230", 5) == ""
    assert deidentify.shift_date("20231230", 5) == "20240104"


def test_burned_in_annotation_is_reported():
    ds = _minimal_dataset()
    ds.BurnedInAnnotation = "YES"
    assert deidentify.deidentify_dataset(ds, case_code="C", date_shift_days=0, uid_secret=SECRET).burned_in
    ds = _minimal_dataset()
    assert not deidentify.deidentify_dataset(ds, case_code="C", date_shift_days=0, uid_secret=SECRET).burned_in


@pytest.mark.parametrize(
    "value",
    [
        "t2_tse_tra", "t2_tirm_tra_dark-fluid", "t1_mprage_sag_p2_iso_KM", "*tfl3d1", "Ax T2 FSE",
        "Sag CUBE FLAIR", "3D BRAVO +C", "AX T1 FSPGR POST", "T2W_TSE", "3D_FLAIR_SENSE", "T1W_3D_TFE +Gd",
        "sT1W_3D_TFE_post", "MRI BRAIN W/WO CONTRAST",
    ],
)
def test_clean_descriptors_keep_sequence_jargon(value):
    assert deidentify.clean_descriptor(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "t2_tse_tra SMITH", "MRI brain John Doe", "T2W 20230314", "FLAIR PID12345678", "DOE^JOHN",
        "t1 post 14.03.2023", "t2 tse (Dr Moreau)", "x" * 70,
    ],
)
def test_clean_descriptors_blank_anything_else(value):
    assert deidentify.clean_descriptor(value) == ""


def test_descriptors_cleaned_in_the_header(synthetic_studies):
    _, files = synthetic_studies[0]
    _, ds = _deidentify_bytes(files[0])
    assert ds.SeriesDescription == "t2_tse_tra_p2"
    assert ds.ProtocolName == "t2_tse_tra_p2"
    assert not ds.StudyDescription


def test_implicit_vr_files_are_handled(tmp_path):
    patient = synthetic.make_patient(1, 3, seed=5)
    files = synthetic.write_study(
        tmp_path, patient, seed=5, sequences=("T2W",), transfer_syntax=ImplicitVRLittleEndian
    )
    data, ds = _deidentify_bytes(files[0])
    assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    lowered = data.lower()
    assert not [v for v in synthetic.planted_phi_values(patient) if v.lower().encode() in lowered]


def _minimal_dataset() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.1"
    ds.PatientName = "DOE^JANE"
    return ds


def test_extra_options_declare_their_codes_in_the_standard_order():
    ds = _minimal_dataset()
    result = deidentify.deidentify_dataset(
        ds, case_code="C1", date_shift_days=-3, uid_secret=SECRET, options=(deidentify.CLEAN_PIXEL_DATA,)
    )
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert codes == list(result.method_codes) == ["113100", "113101", "113105", "113107"]
    assert [item.CodeMeaning for item in ds.DeidentificationMethodCodeSequence][1] == "Clean Pixel Data Option"
    assert list(ds.DeidentificationMethod) == [deidentify.OPTION_CODES[c] for c in codes]
    with pytest.raises(ValueError, match="Unknown"):
        deidentify.method_codes(modified_dates=False, options=("999999",))


def test_marking_again_replaces_the_record_with_the_new_options(synthetic_studies):
    _, files = synthetic_studies[0]
    _, ds = _deidentify_bytes(files[0])
    deidentify.mark_deidentified(ds, date_shift_days=SHIFT, options=(deidentify.CLEAN_PIXEL_DATA,))
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    again = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert [i.CodeValue for i in again.DeidentificationMethodCodeSequence] == ["113100", "113101", "113105", "113107"]
    assert again.PatientIdentityRemoved == "YES"


def test_every_action_is_counted_per_attribute_and_no_value_is(synthetic_studies):
    patient, files = synthetic_studies[0]
    ds = pydicom.dcmread(files[0])
    original_tags = {e.tag for e in ds}  # top level; a removed sequence's items go with it, uncounted
    result = deidentify.deidentify_dataset(ds, case_code="C1", date_shift_days=SHIFT, uid_secret=SECRET)
    actions = result.actions
    assert actions[(0x00100010, deidentify.PSEUDONYM)] == 1
    assert actions[(0x00100020, deidentify.PSEUDONYM)] == 1
    assert actions[(0x00080020, deidentify.DATE_SHIFTED)] == 1  # Study Date
    assert actions[(0x00080080, deidentify.EMPTIED)] == 1  # Institution Name (X/Z/D resolves to Z)
    assert actions[(0x00080081, deidentify.REMOVED)] == 1  # Institution Address
    assert actions[(0x0020000D, deidentify.UID_REMAPPED)] == 1
    assert actions[(0x00280010, deidentify.KEPT)] == 1  # Rows: not in the table
    assert any(action == deidentify.PRIVATE_REMOVED for _, action in actions)
    assert actions[(0x00120064, deidentify.ADDED)] == 1
    assert actions[(0x00080104, deidentify.DESCRIPTOR_BLANKED)] == 1  # Code Meaning inside a kept sequence
    # Every original attribute (private ones by group) has exactly one action per occurrence, and keys are ints.
    counted = {tag for tag, _ in actions}
    for tag in original_tags:
        key = int(tag) | 0xFFFF if tag.is_private else int(tag)
        assert key in counted, f"{tag} has no recorded action"
    planted = {v.lower() for v in synthetic.planted_phi_values(patient)}
    assert not [k for k in actions if str(k[1]).lower() in planted]
