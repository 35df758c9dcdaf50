"""The coordinator-facing API and pages: uploads, cases, series, jobs, clinical metadata import."""

import io
import zipfile

import pytest
from django.urls import reverse

from apps.imaging.models import BatchOutcome, Case, Series, UploadBatch
from tests.factories import AdminFactory, CoordinatorFactory, ReaderFactory
from tests.imaging.dicom_samples import write_patient_study

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued_enhancements(monkeypatch):
    """Enhancement jobs are recorded, not run: these tests are about the doors, not the engine."""
    from apps.imaging.services import enhancement

    queued: list[int] = []
    monkeypatch.setattr(enhancement, "enqueue", lambda job: queued.append(job.pk))
    return queued


@pytest.fixture
def coordinator():
    return CoordinatorFactory()


def login(client, user):
    client.force_login(user)
    return client


def upload(client, files, **extra):
    return client.post(reverse("upload-list"), {"files": files, **extra}, format="multipart")


def study_files(tmp_path, seed=31):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=seed)
    return [io.BytesIO(p.read_bytes()) for p in sorted(folder.rglob("*.dcm"))], folder


def named(files, folder):
    for stream, path in zip(files, sorted(folder.rglob("*.dcm")), strict=False):
        stream.name = path.relative_to(folder).as_posix().replace("/", "_")
    return files


def test_coordinator_uploads_through_the_api(client, coordinator, tmp_path, django_capture_on_commit_callbacks):
    files, folder = study_files(tmp_path)
    login(client, coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, named(files, folder))
    assert response.status_code == 201, response.content
    batch = UploadBatch.objects.get(pk=response.json()["id"])
    assert batch.institution == coordinator.institution and batch.channel == "api"
    assert batch.state == BatchOutcome.DONE and batch.accepted_count == len(files)
    detail = client.get(reverse("upload-detail", args=[batch.pk])).json()
    assert detail["accepted_count"] == len(files) and len(detail["results"]) == len(files)


def test_upload_without_files_is_a_clear_400(client, coordinator):
    login(client, coordinator)
    response = client.post(reverse("upload-list"), {}, format="multipart")
    assert response.status_code == 400 and "files" in response.json()
    assert not UploadBatch.objects.exists()


def test_upload_of_json_instead_of_multipart_is_refused(client, coordinator):
    login(client, coordinator)
    response = client.post(reverse("upload-list"), data='{"files": []}', content_type="application/json")
    assert response.status_code == 415


def test_hostile_zip_through_the_api_is_a_400_with_the_reason(client, coordinator):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../../../tmp/evil.dcm", b"x" * 100)
    buffer.seek(0)
    buffer.name = "upload.zip"
    login(client, coordinator)
    response = upload(client, [buffer])
    assert response.status_code == 400
    assert response.json()["outcome"] == BatchOutcome.REJECTED
    assert response.json()["results"][0]["reason"] == "archive_path_traversal"
    assert "Archive refused (path_traversal)" in response.json()["results"][0]["message"]
    assert not Case.objects.exists()


def test_oversized_request_body_is_refused(client, coordinator, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    login(client, coordinator)
    files = [io.BytesIO(b"x" * 10) for _ in range(5)]
    for index, stream in enumerate(files):
        stream.name = f"f{index}.dcm"
    response = upload(client, files)
    assert response.status_code == 400
    assert not UploadBatch.objects.exists()


def test_admin_must_name_the_site(client, tmp_path):
    admin = AdminFactory()
    files, folder = study_files(tmp_path)
    login(client, admin)
    response = upload(client, named(files[:1], folder))
    assert response.status_code == 400 and "institution" in response.json()


def test_reader_and_anonymous_cannot_use_the_imaging_api(client):
    assert client.get(reverse("upload-list")).status_code in (401, 403)
    login(client, ReaderFactory())
    for name in ("upload-list", "case-list", "series-list", "enhancement-job-list"):
        assert client.get(reverse(name)).status_code == 403


def imported_case(tmp_path, coordinator, client, django_capture_on_commit_callbacks) -> Case:
    files, folder = study_files(tmp_path)
    login(client, coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, named(files, folder))
    client.logout()
    return Case.objects.get()


def test_coordinator_sees_only_their_own_site(client, coordinator, tmp_path, django_capture_on_commit_callbacks):
    case = imported_case(tmp_path, coordinator, client, django_capture_on_commit_callbacks)
    other = CoordinatorFactory()
    login(client, other)
    assert client.get(reverse("case-list")).json()["results"] == []
    assert client.get(reverse("case-detail", args=[case.pk])).status_code == 404
    assert client.patch(reverse("case-detail", args=[case.pk]), {"age": 40},
                        content_type="application/json").status_code == 404
    assert client.get(reverse("upload-list")).json()["results"] == []
    series = case.series.first()
    assert client.patch(reverse("series-detail", args=[series.pk]), {"sequence": "OTHER"},
                        content_type="application/json").status_code == 404
    assert client.get(reverse("imaging:upload_detail", args=[UploadBatch.objects.get().pk])).status_code == 404


def test_coordinator_overrides_the_sequence(client, coordinator, tmp_path, django_capture_on_commit_callbacks):
    case = imported_case(tmp_path, coordinator, client, django_capture_on_commit_callbacks)
    series = case.series.get(sequence="T2W")
    login(client, coordinator)
    response = client.patch(reverse("series-detail", args=[series.pk]), {"sequence": "OTHER"},
                            content_type="application/json")
    assert response.status_code == 200
    series.refresh_from_db()
    assert series.sequence == "OTHER" and series.sequence_overridden
    bad = client.patch(reverse("series-detail", args=[series.pk]), {"sequence": "PET"},
                       content_type="application/json")
    assert bad.status_code == 400
    assert client.patch(reverse("series-detail", args=[series.pk]), {"version": "dl"},
                        content_type="application/json").json()["version"] == "conventional", "read-only"


def csv_upload(text: str | bytes, name="meta.csv"):
    data = text.encode() if isinstance(text, str) else text
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def test_metadata_csv_by_patient_id_and_by_case_code(client, coordinator, tmp_path,
                                                     django_capture_on_commit_callbacks):
    from apps.imaging import synthetic

    case = imported_case(tmp_path, coordinator, client, django_capture_on_commit_callbacks)
    patient = synthetic.make_patient(site_index=0, index=31, seed=31)
    login(client, coordinator)
    text = ("patient_id,age,sex,tumour_type,who_grade,idh_status,codeletion_1p19q\n"
            f"{patient.patient_id},57,F,glioblastoma,IV,wildtype,intact\n")
    response = client.post(reverse("imaging:case_metadata_import"), {"csv_file": csv_upload(text)}, follow=True)
    assert "updated for 1 case" in response.content.decode()
    case.refresh_from_db()
    assert (case.age, case.sex, case.tumour_type, case.who_grade, case.idh_status) == (
        57, "F", "glioblastoma", 4, "wildtype")
    assert patient.patient_id not in str(Case.objects.values_list()), "the identifier is only hashed"
    text = f"case_code,age\n{case.code},58\n"
    client.post(reverse("imaging:case_metadata_import"), {"csv_file": csv_upload(text)})
    case.refresh_from_db()
    assert case.age == 58


@pytest.mark.parametrize(
    "content, message",
    [
        ("age,sex\n40,F\n", "case_code or a patient_id"),
        ("case_code,colour\nX,blue\n", "none of the metadata columns"),
        ("case_code,age\nNOPE,40\n", "no case of yours"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        ("case_code,age,sex,who_grade\n{code},-3,Q,7\n", "age '-3'"),
        ("case_code,age\n=HYPERLINK(\"x\"),40\n", "no case of yours"),
    ],
    ids=["no-key", "no-metadata", "unknown-case", "binary", "bad-values", "formula"],
)
def test_bad_metadata_csv_changes_nothing(client, coordinator, tmp_path, django_capture_on_commit_callbacks,
                                          content, message):
    case = imported_case(tmp_path, coordinator, client, django_capture_on_commit_callbacks)
    if isinstance(content, str):
        content = content.replace("{code}", case.code)
    login(client, coordinator)
    response = client.post(reverse("imaging:case_metadata_import"), {"csv_file": csv_upload(content)}, follow=True)
    page = response.content.decode()
    assert message.replace("'", "&#x27;") in page or message in page
    assert "Nothing was changed" in page or "not UTF-8" in page
    case.refresh_from_db()
    assert case.age is None and case.sex == ""


def test_oversized_metadata_csv_is_refused(client, coordinator, settings, monkeypatch):
    from apps.imaging.services import metadata

    monkeypatch.setattr(metadata, "MAX_CSV_BYTES", 100)
    login(client, coordinator)
    response = client.post(reverse("imaging:case_metadata_import"),
                           {"csv_file": csv_upload("case_code,age\n" + "X,1\n" * 100)}, follow=True)
    assert "larger than" in response.content.decode()


def test_upload_pages_render_for_coordinator(client, coordinator, tmp_path, django_capture_on_commit_callbacks):
    imported_case(tmp_path, coordinator, client, django_capture_on_commit_callbacks)
    login(client, coordinator)
    assert client.get(reverse("home")).url == reverse("imaging:upload_list")
    page = client.get(reverse("imaging:upload_list")).content.decode()
    assert "Recent uploads" in page and "Done" in page
    batch = UploadBatch.objects.get()
    detail = client.get(reverse("imaging:upload_detail", args=[batch.pk])).content.decode()
    assert "Accepted" in detail
    cases = client.get(reverse("imaging:case_list")).content.decode()
    assert Case.objects.get().code in cases
    assert Series.objects.count() == 3


def test_coordinator_watches_and_retries_their_sites_enhancement_jobs(client, coordinator, tmp_path,
                                                                      django_capture_on_commit_callbacks,
                                                                      queued_enhancements):
    from apps.imaging.models import EnhancementJob, JobStatus

    imported_case(tmp_path, coordinator, client, django_capture_on_commit_callbacks)
    job = EnhancementJob.objects.first()
    job.status, job.error = JobStatus.FAILED, "RuntimeError: CUDA out of memory"
    job.save()
    login(client, coordinator)
    page = client.get(reverse("imaging:job_list")).content.decode()
    assert "CUDA out of memory" in page and "Retry" in page
    client.post(reverse("imaging:job_retry", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.pk in queued_enhancements
    client.logout()
    login(client, CoordinatorFactory())
    assert "CUDA" not in client.get(reverse("imaging:job_list")).content.decode()
    assert client.post(reverse("imaging:job_retry", args=[job.pk])).status_code == 404


def test_burned_in_series_is_held_until_the_coordinator_releases_it(client, coordinator, tmp_path,
                                                                    django_capture_on_commit_callbacks,
                                                                    queued_enhancements):
    import pydicom

    from apps.imaging.models import EnhancementJob, SeriesStatus

    folder, _ = write_patient_study(tmp_path / "incoming", seed=33)
    for path in sorted(folder.glob("01/*.dcm")):
        ds = pydicom.dcmread(path)
        ds.BurnedInAnnotation = "YES"
        ds.save_as(path, enforce_file_format=True)
    files = [io.BytesIO(p.read_bytes()) for p in sorted(folder.rglob("*.dcm"))]
    login(client, coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, named(files, folder))
    held = Series.objects.get(status=SeriesStatus.HELD_BURNED_IN)
    assert not EnhancementJob.objects.filter(series=held).exists(), "held images go nowhere"
    assert Series.objects.filter(status=SeriesStatus.READY).count() == 2
    response = client.patch(reverse("series-detail", args=[held.pk]), {"status": "ready"},
                            content_type="application/json")
    assert response.status_code == 200
    assert EnhancementJob.objects.filter(series=held).count() == 1
