"""A coordinator uploads a study in the browser: files go up with a progress bar, then the per-file outcome."""

import zipfile

import pytest

from apps.imaging.models import BatchOutcome, Case, UploadBatch
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
    assert batch.state == BatchOutcome.DONE_WITH_REJECTIONS
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


def _zip(path, entries: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
    return path


def test_the_coordinator_sees_their_own_file_names_which_the_server_never_stores(
    page, chromium, live_server, tmp_path, settings, artifacts
):
    """Seven items, one a zip bomb: each gets its outcome, shown next to the name the coordinator gave it."""
    from tests.imaging.test_ingest import all_database_text

    settings.INGEST_MAX_ARCHIVE_RATIO = 100
    coordinator = CoordinatorFactory()
    folder, _ = write_patient_study(tmp_path / "study", seed=43)
    series = sorted(p for p in folder.iterdir() if p.is_dir())
    sent = tmp_path / "sent"
    sent.mkdir()
    bomb = _zip(sent / "DOE_JANE_export.zip", {"a.dcm": b"\0" * (8 * 1024 * 1024)})
    study = _zip(sent / "DOE_JANE_study.zip", {p.name: p.read_bytes() for p in sorted(series[0].glob("*.dcm"))})
    report = sent / "DOE_JANE_report.pdf"
    report.write_bytes(b"%PDF-1.4 not an image" * 20)
    singles = []
    for index, path in enumerate(sorted(series[1].glob("*.dcm"))[:4]):
        singles.append(sent / f"DOE_JANE_slice{index}.dcm")
        singles[-1].write_bytes(path.read_bytes())
    files = [bomb, study, report, *singles]

    log_in(page, coordinator)
    page.set_input_files("input[name=files]", [str(p) for p in files])
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/imaging/uploads/*/")
    page.wait_for_selector("text=Done, some files rejected", timeout=60_000)
    page.screenshot(path=str(artifacts / "upload-own-names.png"), full_page=True)

    batch = UploadBatch.objects.get()
    in_study = len(list(series[0].glob("*.dcm")))
    assert batch.rejected_count == 2 and batch.file_count == 2 + in_study + 4
    rows = {
        row.get_attribute("data-name"): row.inner_text()
        for row in page.query_selector_all("#results tr[data-name]")
    }
    assert len(rows) == batch.file_count, "every item has its outcome"
    bomb_row = rows[batch.items[0]]
    assert "DOE_JANE_export.zip" in bomb_row and "Archive refused (compression_ratio)" in bomb_row
    assert "DOE_JANE_report.pdf" in rows[batch.items[2]] and "Rejected" in rows[batch.items[2]]
    members = [text for name, text in rows.items() if name.startswith(batch.items[1])]
    assert len(members) == in_study
    assert all("DOE_JANE_study.zip › " in text and "Accepted" in text for text in members)
    for index in range(4):
        assert f"DOE_JANE_slice{index}.dcm" in rows[batch.items[3 + index]]
    assert "Process again" not in page.inner_text("main")
    assert "DOE_JANE" not in all_database_text(), "the server keeps only neutral names"
    assert not page.errors

    other_browser = chromium.new_context(base_url=live_server.url)
    elsewhere = other_browser.new_page()
    log_in(elsewhere, coordinator)
    elsewhere.goto(f"/imaging/uploads/{batch.pk}/")
    text = elsewhere.inner_text("main")
    assert "DOE_JANE" not in text and "this browser does not have them" in text
    other_browser.close()
