"""DICOMweb STOW-RS: multipart/related bodies in, PS3.18 Store Instances Responses out, through the ordinary
staging and ingestion."""

import base64
import io
from pathlib import Path

import pydicom
import pytest
from django.test import Client

from apps.imaging.models import BatchOutcome, Instance, Series, UploadBatch
from apps.imaging.services import stow, uploads
from apps.jobs.models import JobStatus
from tests.factories import PASSWORD, AdminFactory, CoordinatorFactory, InstitutionFactory, ReaderFactory
from tests.imaging.dicom_samples import write_patient_study

pytestmark = pytest.mark.django_db

URL = "/api/imaging/dicomweb/studies"
BOUNDARY = "rs-boundary-7d1f"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
REFERENCED = "00081199"
FAILED = "00081198"
SOP_INSTANCE = "00081155"
FAILURE_REASON = "00081197"


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[list[bytes], list[str]]:
    folder, planted = write_patient_study(tmp_path_factory.mktemp("stow"), seed=5)
    return [p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()], planted


@pytest.fixture
def site():
    return InstitutionFactory(code="north")


@pytest.fixture
def coordinator(site):
    return CoordinatorFactory(institution=site)


@pytest.fixture
def client_of(client):
    def login(user) -> Client:
        client.force_login(user)
        return client

    return login


def body(parts: list[bytes], *, boundary: str = BOUNDARY, headers: list[str] | None = None) -> bytes:
    out = io.BytesIO(b"preamble to be ignored\r\n")
    for index, part in enumerate(parts):
        out.write(f"--{boundary}\r\n".encode())
        out.write(((headers[index] if headers else "Content-Type: application/dicom") + "\r\n\r\n").encode())
        out.write(part + b"\r\n")
    out.write(f"--{boundary}--\r\nepilogue".encode())
    return out.getvalue()


def post(client: Client, data: bytes, url: str = URL, content_type: str = CONTENT_TYPE, **extra):
    return client.post(url, data=data, content_type=content_type, **extra)


def sop_uids(response, key: str = REFERENCED) -> list[str]:
    return [item[SOP_INSTANCE]["Value"][0] for item in response.json().get(key, {}).get("Value", [])]


def original_uid(raw: bytes, keyword: str) -> str:
    return str(pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True).get(keyword))


def test_a_study_is_stored_and_referenced_by_its_de_identified_uids(client_of, coordinator, study, settings):
    files, planted = study
    response = post(client_of(coordinator), body(files))

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/dicom+json"
    assert FAILED not in response.json()
    referenced = sop_uids(response)
    assert sorted(referenced) == sorted(Instance.objects.values_list("sop_uid", flat=True))
    assert not {original_uid(raw, "SOPInstanceUID") for raw in files} & set(referenced)
    batch = UploadBatch.objects.get()
    assert batch.channel == "stow-rs" and batch.state == BatchOutcome.DONE and batch.institution == coordinator.institution
    assert batch.accepted_count == len(files) and Series.objects.count() == 3
    assert not uploads.staging_dir(batch).exists()
    text = response.content.decode()
    for value in planted:
        assert value not in text


def test_a_study_uid_in_the_url_must_match(client_of, coordinator, study):
    files, _ = study
    study_uid = original_uid(files[0], "StudyInstanceUID")
    client = client_of(coordinator)

    assert post(client, body(files[:2]), url=f"{URL}/{study_uid}").status_code == 200

    response = post(client, body(files[2:4]), url=f"{URL}/1.2.3.4")
    assert response.status_code == 409
    failed = response.json()[FAILED]["Value"]
    assert [item[FAILURE_REASON]["Value"][0] for item in failed] == [stow.DATA_SET_MISMATCH] * 2
    assert sop_uids(response, FAILED) == [original_uid(raw, "SOPInstanceUID") for raw in files[2:4]]
    assert Instance.objects.count() == 2
    assert post(client, body(files[:1]), url=f"{URL}/not-a-uid").status_code == 400


def test_a_part_that_is_not_dicom_fails_alone(client_of, coordinator, study):
    files, _ = study
    response = post(client_of(coordinator), body([files[0], b"just some text, not DICOM", b"", files[1]]))

    assert response.status_code == 202
    failed = response.json()[FAILED]["Value"]
    assert [item[FAILURE_REASON]["Value"][0] for item in failed] == [stow.CANNOT_UNDERSTAND] * 2
    assert all(SOP_INSTANCE not in item for item in failed)
    assert len(sop_uids(response)) == 2
    batch = UploadBatch.objects.get()
    assert batch.state == BatchOutcome.DONE_WITH_REJECTIONS
    assert sorted(batch.results.filter(outcome="rejected").values_list("reason", flat=True)) == [
        "empty_part", "not_dicom"
    ]


def test_a_part_of_another_media_type_fails(client_of, coordinator, study):
    files, _ = study
    headers = ["Content-Type: application/dicom", "Content-Type: application/json"]
    response = post(client_of(coordinator), body([files[0], b"{}"], headers=headers))

    assert response.status_code == 202
    assert UploadBatch.objects.get().results.get(outcome="rejected").reason == "unsupported_part"


def test_sending_the_same_instances_again_references_the_same_uids(client_of, coordinator, study):
    files, _ = study
    client = client_of(coordinator)
    first = sop_uids(post(client, body(files[:3])))
    again = post(client, body(files[:3]))

    assert again.status_code == 200
    assert sop_uids(again) == first
    assert Instance.objects.count() == 3


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/dicom", 415),
        ("multipart/form-data; boundary=x", 415),
        ('multipart/related; type="application/dicom+json"; boundary=x', 415),
        ('multipart/related; type="application/dicom"', 400),
    ],
)
def test_other_content_types_are_refused(client_of, coordinator, study, content_type, status):
    assert post(client_of(coordinator), body(study[0][:1]), content_type=content_type).status_code == status
    assert not Instance.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda files: body(files[:2])[:-len(f"--{BOUNDARY}--\r\nepilogue") - 500], id="truncated"),
        pytest.param(lambda files: f"--{BOUNDARY}--\r\n".encode(), id="no-parts"),
        pytest.param(lambda files: files[0], id="no-delimiter"),
        pytest.param(lambda files: body(files[:1]).replace(b"Content-Type:", b"Content-Type"), id="bad-header"),
    ],
)
def test_a_malformed_body_is_refused_and_leaves_a_failed_batch(client_of, coordinator, study, data, settings):
    response = post(client_of(coordinator), data(study[0]))

    assert response.status_code == 400
    assert not Instance.objects.exists()
    for batch in UploadBatch.objects.all():
        assert batch.status == JobStatus.FAILED and batch.error.startswith("STOW-RS request refused")
    assert not any(Path(settings.UPLOAD_STAGING_DIR).rglob("*.dcm"))


def test_an_oversized_body_is_refused_with_413(client_of, coordinator, study, settings):
    settings.STOW_MAX_BYTES = 10_000
    assert post(client_of(coordinator), body(study[0][:3])).status_code == 413
    assert not UploadBatch.objects.exists()


def test_a_body_over_the_limit_without_content_length_is_cut_off(coordinator, study, settings):
    settings.STOW_MAX_BYTES = 10_000
    with pytest.raises(stow.StowError) as refused:
        stow.store_instances(coordinator.institution, coordinator, io.BytesIO(body(study[0][:3])), CONTENT_TYPE, None)
    assert refused.value.status == 413
    assert UploadBatch.objects.get().status == JobStatus.FAILED
    assert not any(Path(settings.UPLOAD_STAGING_DIR).rglob("*.dcm"))


def test_an_oversized_part_fails_alone(client_of, coordinator, study, settings):
    settings.INGEST_MAX_FILE_BYTES = max(len(study[0][0]), len(study[0][1])) + 10
    response = post(client_of(coordinator), body([study[0][0], study[0][1] * 2]))

    assert response.status_code == 202
    assert response.json()[FAILED]["Value"][0][FAILURE_REASON]["Value"] == [stow.OUT_OF_RESOURCES]


def test_the_parser_finds_boundaries_split_across_reads(tmp_path, monkeypatch, study):
    monkeypatch.setattr(stow, "CHUNK_BYTES", 7)
    files = study[0][:2]
    parts = stow.receive_parts(io.BytesIO(body(files)), BOUNDARY, tmp_path, max_body=10**9, max_part=10**9)

    assert [p.size for p in parts] == [len(f) for f in files]
    assert [(tmp_path / p.name).read_bytes() for p in parts] == files


def test_a_large_request_is_queued_and_answered_202(client_of, coordinator, study, settings,
                                                     django_capture_on_commit_callbacks):
    settings.STOW_SYNC_MAX_BYTES = 0
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client_of(coordinator), body(study[0][:2]))

    batch = UploadBatch.objects.get()
    assert response.status_code == 202
    assert response["Location"] == f"/api/imaging/uploads/{batch.pk}/"
    assert batch.state == BatchOutcome.DONE and batch.accepted_count == 2


def test_readers_and_anonymous_callers_are_refused(client, client_of, site, study):
    anonymous = post(client, body(study[0][:1]))
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Basic")
    assert post(client_of(ReaderFactory(institution=site)), body(study[0][:1])).status_code == 403
    assert not UploadBatch.objects.exists()


def test_a_coordinator_cannot_send_for_another_site(client_of, coordinator, study):
    InstitutionFactory(code="south")
    response = post(client_of(coordinator), body(study[0][:1]), url=f"{URL}?site=south")
    assert response.status_code == 403
    assert not UploadBatch.objects.exists()


def test_admins_name_the_site(client_of, site, study):
    client = client_of(AdminFactory())
    assert post(client, body(study[0][:1])).status_code == 400
    assert post(client, body(study[0][:1]), url=f"{URL}?site=nowhere").status_code == 400
    assert post(client, body(study[0][:1]), url=f"{URL}?site=north").status_code == 200
    assert UploadBatch.objects.get().institution == site


def test_basic_auth_needs_no_csrf_token_but_a_session_does(coordinator, study):
    token = base64.b64encode(f"{coordinator.username}:{PASSWORD}".encode()).decode()
    basic = Client(enforce_csrf_checks=True)
    assert post(basic, body(study[0][:1]), HTTP_AUTHORIZATION=f"Basic {token}").status_code == 200

    session = Client(enforce_csrf_checks=True)
    session.force_login(coordinator)
    assert post(session, body(study[0][1:2])).status_code == 403


@pytest.mark.parametrize(
    "accept",
    [
        "application/dicom+json",  # the README's curl example, and what DICOMweb senders send
        "application/dicom+json, application/json;q=0.5",
        "application/json",
        "*/*",
    ],
)
def test_the_standard_accept_header_is_answered(client_of, coordinator, study, accept):
    files, _ = study
    response = post(client_of(coordinator), body(files[:2]), HTTP_ACCEPT=accept)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/dicom+json"
    assert len(sop_uids(response)) == 2 and Instance.objects.count() == 2


def test_the_accept_header_also_holds_for_refusals(client_of, coordinator, study):
    """Errors are answered, not turned into 406: a sender asking for DICOM JSON learns why it was refused."""
    client = client_of(coordinator)
    response = post(client, body(study[0][:1]), content_type="application/dicom", HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 415
    assert "multipart/related" in response.json()["detail"]

    anonymous = post(Client(), body(study[0][:1]), HTTP_ACCEPT="application/dicom+json")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Basic")


def test_an_answer_the_server_cannot_give_is_406_before_anything_is_stored(client_of, coordinator, study):
    response = post(client_of(coordinator), body(study[0][:1]), HTTP_ACCEPT="application/dicom+xml")

    assert response.status_code == 406
    assert "application/dicom+json" in response.json()["detail"]
    assert not UploadBatch.objects.exists()
