"""STOW-RS over real HTTP: a curl-like raw request and the `dicomweb-client` library against pytest-django's live
server, with HTTP Basic and with a logged-in session (CSRF token), as the README describes."""

import base64
import http.client
import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass
from django.test import RequestFactory

from apps.imaging.dicomweb import StowView
from apps.imaging.models import Instance, UploadBatch
from apps.imaging.services import enhancement
from tests.factories import PASSWORD, CoordinatorFactory, InstitutionFactory
from tests.imaging.dicom_samples import write_patient_study

PATH = "/api/imaging/dicomweb/studies"
BOUNDARY = "XYZ-readerstudy"


@pytest.fixture(scope="module")
def study_files(tmp_path_factory) -> list[Path]:
    folder, _ = write_patient_study(tmp_path_factory.mktemp("stow-client"), seed=9)
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def coordinator(transactional_db, monkeypatch):
    # The enhancement the stored series would queue is not what these tests are about (and would run the model
    # in the live server's thread): record that it was asked for instead.
    queued = []
    monkeypatch.setattr(enhancement, "enqueue", queued.append)
    return CoordinatorFactory(institution=InstitutionFactory(code="north"))


def mime_body(parts: list[bytes]) -> bytes:
    out = io.BytesIO()
    for part in parts:
        out.write(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return out.getvalue()


def test_the_readme_curl_request_is_stored(live_server, coordinator, study_files):
    """Exactly the README's curl: Basic credentials, multipart/related body, `Accept: application/dicom+json`."""
    parts = [p.read_bytes() for p in study_files[:3]]
    address = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    token = base64.b64encode(f"{coordinator.username}:{PASSWORD}".encode()).decode()
    connection.request("POST", PATH, body=mime_body(parts), headers={
        "Authorization": f"Basic {token}",
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        "Accept": "application/dicom+json",
    })
    response = connection.getresponse()
    payload = response.read()
    connection.close()

    assert response.status == 200, payload
    assert response.getheader("Content-Type") == "application/dicom+json"
    answer = pydicom.Dataset.from_json(payload)
    assert sorted(item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence) == sorted(
        Instance.objects.values_list("sop_uid", flat=True)
    )
    assert len(answer.ReferencedSOPSequence) == 3


@pytest.mark.parametrize("accept", [None, "application/dicom+json"])
def test_dicomweb_client_stores_a_study_with_basic_auth(live_server, coordinator, study_files, accept):
    """The library as a sender uses it: its own Basic session; with its default Accept and with DICOM JSON."""
    datasets = [pydicom.dcmread(p) for p in study_files]
    client = DICOMwebClient(
        url=f"{live_server.url}/api/imaging/dicomweb",
        session=create_session_from_user_pass(coordinator.username, PASSWORD),
        headers={"Accept": accept} if accept else None,
    )

    answer = client.store_instances(datasets)

    stored = set(Instance.objects.values_list("sop_uid", flat=True))
    assert len(stored) == len(datasets)
    assert {item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence} == stored
    assert "FailedSOPSequence" not in answer
    batch = UploadBatch.objects.get()
    assert batch.channel == "stow-rs" and batch.accepted_count == len(datasets)
    # De-identified on the way in: none of the UIDs that were sent is stored.
    assert not {str(ds.SOPInstanceUID) for ds in datasets} & stored


def test_dicomweb_client_stores_with_a_logged_in_session_and_its_csrf_token(live_server, coordinator, study_files):
    session = requests.Session()
    login_page = session.get(f"{live_server.url}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    logged_in = session.post(
        f"{live_server.url}/accounts/login/",
        data={"username": coordinator.username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{live_server.url}/accounts/login/"}, timeout=30,
    )
    assert logged_in.ok and "sessionid" in session.cookies
    datasets = [pydicom.dcmread(p) for p in study_files[:2]]
    url = f"{live_server.url}/api/imaging/dicomweb"

    without_token = DICOMwebClient(url=url, session=session, headers={"Accept": "application/dicom+json"})
    with pytest.raises(requests.HTTPError) as refused:
        without_token.store_instances(datasets)
    assert refused.value.response.status_code == 403
    assert not Instance.objects.exists()

    with_token = DICOMwebClient(url=url, session=session, headers={
        "Accept": "application/dicom+json", "X-CSRFToken": session.cookies["csrftoken"],
    })
    answer = with_token.store_instances(datasets)
    assert len(answer.ReferencedSOPSequence) == 2 and Instance.objects.count() == 2


def test_dicomweb_client_wrong_password_is_refused_with_a_challenge(live_server, coordinator, study_files):
    client = DICOMwebClient(
        url=f"{live_server.url}/api/imaging/dicomweb",
        session=create_session_from_user_pass(coordinator.username, "not the password"),
        headers={"Accept": "application/dicom+json"},
    )
    with pytest.raises(requests.HTTPError) as refused:
        client.store_instances([pydicom.dcmread(study_files[0])])
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Basic")
    assert not UploadBatch.objects.exists()



def test_a_chunked_body_the_server_cannot_read_is_refused_with_411(live_server, coordinator, study_files):
    """dicomweb-client sends bodies above its chunk size chunked, without Content-Length. Django's development
    server (the demo's) cannot de-chunk them: a clear 411, never "truncated" or an empty upload."""
    datasets = [pydicom.dcmread(p) for p in study_files[:4]]
    client = DICOMwebClient(
        url=f"{live_server.url}/api/imaging/dicomweb",
        session=create_session_from_user_pass(coordinator.username, PASSWORD),
        headers={"Accept": "application/dicom+json"}, chunk_size=10_000,
    )
    with pytest.raises(requests.HTTPError) as refused:
        client.store_instances(datasets)
    assert refused.value.response.status_code == 411
    assert "Content-Length" in refused.value.response.json()["detail"]
    assert not UploadBatch.objects.exists()


def test_a_chunked_body_is_read_where_the_server_de_chunks_it(coordinator, study_files):
    """gunicorn (production) de-chunks the body and sets wsgi.input_terminated; no Content-Length arrives."""
    parts = [p.read_bytes() for p in study_files[:3]]
    token = base64.b64encode(f"{coordinator.username}:{PASSWORD}".encode()).decode()
    request = RequestFactory().generic(
        "POST", PATH, CONTENT_TYPE=f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        HTTP_AUTHORIZATION=f"Basic {token}", HTTP_ACCEPT="application/dicom+json", HTTP_TRANSFER_ENCODING="chunked",
    )
    request.META["wsgi.input"] = io.BytesIO(mime_body(parts))
    request.META["wsgi.input_terminated"] = True

    response = StowView.as_view()(request)
    getattr(response, "render", lambda: None)()

    assert response.status_code == 200, response.content
    assert len(pydicom.Dataset.from_json(response.content).ReferencedSOPSequence) == 3
    assert Instance.objects.count() == 3
