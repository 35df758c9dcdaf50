"""A coordinator uploads a study in the browser: files go up with a progress bar, then the per-file outcome."""

import zipfile

import pytest

from apps.imaging.models import BatchStatus, Case, UploadBatch
from tests.factories import PASSWORD, CoordinatorFactory
from tests.imaging.dicom_samples import write_patient_study

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_enhancement(monkeypatch):
    monkeypatch.setattr("apps.imaging.services.enhancement.enqueue", lambda job: None)


def log_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url("**/imaging/uploads/")


def test_coordinator_uploads_files_and_sees_each_outcome(page, tmp_path, artifacts):
    coordinator = CoordinatorFactory()
    folder, _ = write_patient_study(tmp_path / "study", seed=41)
    (folder / "readme.txt").write_text("not an image")
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    log_in(page, coordinator)
    page.set_input_files("input[name=files]", files)
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/imaging/uploads/*/")
    page.wait_for_selector("text=Done, some files rejected", timeout=60_000)
    page.screenshot(path=str(artifacts / "upload-detail.png"), full_page=True)
    batch = UploadBatch.objects.get()
    assert batch.institution == coordinator.institution
    assert batch.status == BatchStatus.DONE_WITH_REJECTIONS
    assert batch.rejected_count == 1 and batch.accepted_count == len(files) - 1
    body = page.inner_text("main")
    assert "no DICOM preamble" in body
    assert Case.objects.filter(institution=coordinator.institution).count() == 1
    assert not page.errors


def test_hostile_archive_is_refused_in_the_page(page, tmp_path):
    coordinator = CoordinatorFactory()
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../../escape.dcm", b"x" * 64)
    log_in(page, coordinator)
    page.set_input_files("input[name=files]", str(archive))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/imaging/uploads/*/")
    assert "Archive refused (path_traversal)" in page.inner_text("main")
    assert not Case.objects.exists()
