"""Deny-by-default de-identification (issue 15, item 4): only attributes on the allow-list of the SOP class survive.

An unknown public attribute (a vendor writing free text into an even group, so it looks private but is not) is kept by
the Basic Profile and removed in this mode; the certificate names the allow-list's version and sha256 and counts every
removal; a demo-like upload (three vendors' studies and a vendor DL series) de-identified this way is still stored,
classified, linked, enhanced and served to a reader with the same pixels and geometry as under the basic profile.
"""

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from pydicom.uid import MRImageStorage

from apps.accounts.models import Role
from apps.accounts.services import create_member
from apps.imaging import deidentify, synthetic
from apps.imaging.deid_allow_list import ALLOW_LIST_NAME, ALLOW_LISTS, NoAllowList, allow_list_sha256
from apps.imaging.models import EnhancementJob, Instance, Series, SeriesSource, SeriesStatus, Version
from apps.imaging.services import enhancement, ingest, storage, uploads
from apps.institutions.services import add_site
from apps.studies.models import ReadingMode, TaskPanel
from apps.studies.services import definition
from tests.privacy.test_certificate import pdf_text

pytestmark = pytest.mark.django_db

UNKNOWN_TAG = 0x001899F1  # an even (public) group, not in the data dictionary nor in the profile's table
UNKNOWN_KEY = "001899F1"


def plant_unknown_attribute(paths: list[Path], text: str) -> None:
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.add_new(UNKNOWN_TAG, "LO", text)
        ds.save_as(path, enforce_file_format=True)


def one_dataset(study_files: list[Path], text: str) -> pydicom.Dataset:
    ds = pydicom.dcmread(study_files[-1])  # a FLAIR slice: it references the study's first image
    ds.add_new(UNKNOWN_TAG, "LO", text)
    return ds


def test_deny_by_default_removes_an_unknown_public_attribute_the_basic_profile_keeps(tmp_path):
    patient = synthetic.make_patient(0, index=3, seed=3)
    files = synthetic.write_study(tmp_path, patient, seed=3, sequences=("T2W", "FLAIR"))
    basic = one_dataset(files, f"Pt {patient.name}")
    deny = one_dataset(files, f"Pt {patient.name}")

    kept = deidentify.deidentify_dataset(basic, case_code="C-1", date_shift_days=-3, uid_secret="k")
    removed = deidentify.deidentify_dataset(deny, case_code="C-1", date_shift_days=-3, uid_secret="k",
                                            deny_by_default=True)

    assert basic[UNKNOWN_TAG].value == f"Pt {patient.name}"
    assert kept.actions[(UNKNOWN_TAG, deidentify.KEPT)] == 1
    assert UNKNOWN_TAG not in deny
    assert removed.actions[(UNKNOWN_TAG, deidentify.NOT_ALLOWED)] == 1
    # Public attributes the table keeps but the list does not name go too; what the product reads stays.
    assert "InstitutionalDepartmentName" not in deny and "PerformedProcedureStepID" not in deny
    assert "ReferencedStudySequence" not in deny
    for keyword in ("ImagePositionPatient", "PixelSpacing", "RepetitionTime", "MRAcquisitionType", "PixelData",
                    "DeidentificationMethodCodeSequence", "ReferencedImageSequence"):
        assert keyword in deny, keyword
    reference = deny.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert reference == basic.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    # The same method codes: DICOM has no code for an allow-list, so none is invented.
    assert removed.method_codes == kept.method_codes
    assert np.array_equal(deny.pixel_array, basic.pixel_array)


def test_a_sop_class_without_an_allow_list_cannot_be_deidentified_deny_by_default(tmp_path):
    patient = synthetic.make_patient(0, index=3, seed=3)
    ds = pydicom.dcmread(synthetic.write_study(tmp_path, patient, seed=3, sequences=("T2W",))[0])
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    with pytest.raises(NoAllowList, match="Secondary|1.2.840.10008.5.1.4.1.1.7"):
        deidentify.deidentify_dataset(ds, case_code="C-1", date_shift_days=-3, uid_secret="k", deny_by_default=True)


def site_asking(**options) -> tuple:
    """A site with the given privacy options, its coordinator, and a reader of another site."""
    site = add_site("strict", "Strict University Hospital")
    for name, value in options.items():
        setattr(site, name, value)
    site.save()
    reader = create_member("reader-east", "pw-reader-east", Role.READER, add_site("east", "East Regional"))
    return site, create_member("coordinator-strict", "pw-coordinator-strict", Role.COORDINATOR, site), reader


def upload_folder(site, coordinator, folder: Path, capture):
    with capture(execute=True):
        batch = uploads.stage_path(site, coordinator, folder)
        uploads.enqueue_processing(batch)
    batch.refresh_from_db()
    return batch


def stored_pixels(series: Series) -> list[np.ndarray]:
    """The stored slices in the order a reader gets them (along the slice normal)."""
    return [storage.read_dataset(i).pixel_array for i in series.instances.order_by("slice_location")]


def test_a_demo_like_upload_deny_by_default_is_classified_linked_enhanced_and_read_with_its_pixels(
    tmp_path, client, settings, django_capture_on_commit_callbacks, one_torch_thread
):
    """Three vendors' studies (T2W, FLAIR, 3D T1W post-contrast) and a vendor's DL copy of one T2W, with an unknown
    public attribute planted in every file, uploaded by a site that asked for deny-by-default."""
    strict, coordinator, reader = site_asking(deny_by_default=True)
    originals: dict[str, pydicom.Dataset] = {}  # remapped SOP Instance UID -> the file as uploaded
    expected_sequences = {}
    for site_index in range(3):
        patient = synthetic.make_patient(site_index, index=1, seed=11)
        files = synthetic.write_study(tmp_path / "upload" / f"study{site_index}", patient, seed=11)
        if site_index == 0:
            files += synthetic.write_vendor_enhanced([p for p in files if p.parent.name == "01"],
                                                     tmp_path / "upload" / "vendor")
        plant_unknown_attribute(files, f"Pt {patient.name} MRN {patient.patient_id}")
        for path in files:
            ds = pydicom.dcmread(path)
            originals[deidentify.remap_uid(ds.SOPInstanceUID, settings.DEID_SECRET)] = ds
            if "vendor" not in path.parts:
                expected_sequences[deidentify.remap_uid(ds.SeriesInstanceUID, settings.DEID_SECRET)] = (
                    synthetic.SEQUENCES[int(path.parent.name) - 1])
    batch = upload_folder(strict, coordinator, tmp_path / "upload", django_capture_on_commit_callbacks)
    assert batch.accepted_count == len(originals) == 3 * (12 + 12 + 16) + 12 and batch.rejected_count == 0

    # Stored: the planted attribute gone from every file; the pixels, geometry and acquisition exactly as uploaded.
    for instance in Instance.objects.filter(series__source=SeriesSource.UPLOADED).select_related("series"):
        stored, original = storage.read_dataset(instance), originals[instance.sop_uid]
        assert UNKNOWN_TAG not in stored and "InstitutionalDepartmentName" not in stored
        assert np.array_equal(stored.pixel_array, original.pixel_array)
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                        "RepetitionTime", "EchoTime", "FlipAngle", "MagneticFieldStrength", "MRAcquisitionType",
                        "Rows", "Columns", "BitsStored", "WindowCenter", "WindowWidth"):
            assert stored.get(keyword) == original.get(keyword), keyword
    conventional = Series.objects.filter(version=Version.CONVENTIONAL)
    assert {s.series_uid: s.sequence for s in conventional} == expected_sequences  # classified as its files say
    for series in conventional:
        assert series.status == SeriesStatus.READY
        assert series.acquisition == ingest.acquisition_parameters(originals[series.instances.first().sop_uid])
        assert series.dl_versions.count() == (2 if series.sequence == "T2W" and series.case.code == vendor_case() else 1)
    vendor = Series.objects.get(source=SeriesSource.VENDOR)
    assert vendor.status == SeriesStatus.READY and vendor.version == Version.DL  # linked through remapped references

    # The certificate names the allow-list and counts the removals, in JSON and PDF.
    client.force_login(coordinator)
    url = reverse("upload-certificate", args=[batch.pk])
    document = client.get(url).json()
    d = document["deny_by_default"]
    assert d["applied"] and d["instances"] == d["of_instances"] == batch.accepted_count
    assert d["allow_lists"] == [{"name": ALLOW_LIST_NAME, "sha256": allow_list_sha256()}]
    listed = {row["tag"]: row["actions"] for row in document["actions"]}
    assert listed["(0018,99F1)"] == {deidentify.NOT_ALLOWED: batch.accepted_count}
    assert listed["(0008,1040)"] == {deidentify.NOT_ALLOWED: batch.accepted_count}  # department
    kept = {int(tag.strip("()").replace(",", ""), 16) for tag, actions in listed.items() if deidentify.KEPT in actions}
    assert kept and kept <= ALLOW_LISTS[MRImageStorage]  # what the profile's table does not list survives only listed
    pdf = pdf_text(client.get(url + "?format=pdf").content)
    assert allow_list_sha256() in pdf.replace("\n", "") and "Deny-by-default on" in " ".join(pdf.split())
    served = client.get(reverse("privacy-allow-list")).json()
    canonical = json.dumps(served["allow_list"], sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(canonical).hexdigest() == served["sha256"] == allow_list_sha256()

    # A reader reads every case: each image comes out with its stored pixels, conventional and DL alike. DL versions
    # that QA flagged on these small phantoms are accepted by the coordinator first, as the product asks.
    for job in EnhancementJob.objects.filter(qa_flagged=True, qa_accepted_at__isnull=True):
        enhancement.accept_qa(job, coordinator)
    study = definition.create_study("Deny", mode=ReadingMode.SINGLE, readers_per_case=1, min_distance=1,
                                    sequences=["T2W", "FLAIR", "T1W_POST"])
    definition.set_readers(study, [reader])
    definition.set_cases(study, list(strict.cases.all()))
    assert definition.generate(study) == 3 * 3 * 2
    definition.open_for_reading(study)
    client.force_login(reader)
    for task in study.tasks.all():
        (panel,) = client.get(f"/api/reading/tasks/{task.token}/").json()["panels"]
        expected = stored_pixels(TaskPanel.objects.get(task=task).series)
        assert len(panel["image_urls"]) == len(expected)
        for url, pixels in zip(panel["image_urls"], expected, strict=True):
            response = client.get(url)
            assert response.status_code == 200
            assert np.array_equal(pydicom.dcmread(io.BytesIO(response.content)).pixel_array, pixels.astype(np.int16))


def vendor_case() -> str:
    return Series.objects.get(source=SeriesSource.VENDOR).case.code
