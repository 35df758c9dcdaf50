"""What a coordinator is told about an upload: one outcome per uploaded file or archive, a refused upload kept on
record, a status that says what happened (nothing stored, some files rejected, series held for review), and the
neutral name of each uploaded item so the browser can show the coordinator their own file names."""

import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.urls import reverse

from apps.imaging.models import BatchOutcome, Case, FileOutcome, Series, SeriesStatus, UploadBatch
from tests.factories import CoordinatorFactory
from tests.imaging.dicom_samples import write_patient_study
from tests.imaging.test_ingest import _absurd, _ct, _drop_pixels

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued_enhancements(monkeypatch):
    from apps.imaging.services import enhancement

    monkeypatch.setattr(enhancement, "enqueue", lambda job: None)


@pytest.fixture(autouse=True)
def small_archive_ratio(settings):
    settings.INGEST_MAX_ARCHIVE_RATIO = 100


@pytest.fixture
def coordinator(client):
    user = CoordinatorFactory()
    client.force_login(user)
    return user


def named(data: bytes, name: str) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.bin", b"\0" * (8 * 1024 * 1024))
    return buffer.getvalue()


def changed(path: Path, change) -> bytes:
    ds = pydicom.dcmread(path)
    change(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _burned_in(ds):
    ds.BurnedInAnnotation = "YES"


def seven_bad_files(tmp_path) -> list[tuple[str, bytes, str]]:
    """(name the coordinator gave it, content, expected outcome reason), as in the probe: six bad files and a bomb."""
    folder, _ = write_patient_study(tmp_path / "incoming", seed=61)
    series = sorted(p for p in folder.iterdir() if p.is_dir())
    first, second = sorted(series[0].glob("*.dcm"))[:2]
    other = sorted(series[1].glob("*.dcm"))[0]
    return [
        ("DOE_JANE_report.dcm", b"%PDF-1.4 this is not DICOM at all" * 20, "not_dicom"),
        ("DOE_JANE_half.dcm", first.read_bytes()[: first.stat().st_size // 2], "truncated"),
        ("DOE_JANE_nopixels.dcm", changed(first, _drop_pixels), "no_pixel_data"),
        ("DOE_JANE_ct.dcm", changed(second, _ct), "not_mr"),
        ("DOE_JANE_huge.dcm", changed(second, _absurd), "absurd_dimensions"),
        ("DOE_JANE_burned.dcm", changed(other, _burned_in), "held_burned_in"),
        ("DOE_JANE_export.zip", zip_bomb(), "archive_compression_ratio"),
    ]


def api_upload(client, items, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            reverse("upload-list"), {"files": [named(data, name) for name, data, *_ in items]}, format="multipart"
        )


def detail_page(client, batch_id: int) -> str:
    return client.get(reverse("imaging:upload_detail", args=[batch_id])).content.decode()


# Item 1: one bad archive no longer sinks the upload.
def test_each_of_seven_bad_files_gets_its_own_outcome(client, coordinator, tmp_path,
                                                      django_capture_on_commit_callbacks):
    items = seven_bad_files(tmp_path)
    response = api_upload(client, items, django_capture_on_commit_callbacks)
    assert response.status_code == 201, response.content
    batch_id = response.json()["id"]
    detail = client.get(reverse("upload-detail", args=[batch_id])).json()

    assert detail["file_count"] == 7 and detail["processed_count"] == 7
    by_reason = {r["reason"]: r for r in detail["results"]}
    assert sorted(by_reason) == sorted(reason for *_, reason in items), detail["results"]
    bomb = by_reason["archive_compression_ratio"]
    assert bomb["outcome"] == FileOutcome.REJECTED
    assert bomb["message"].startswith("Archive refused (compression_ratio)")
    assert detail["rejected_count"] == 6 and detail["accepted_count"] == 1 and detail["held_count"] == 1
    assert detail["outcome"] == BatchOutcome.DONE_WITH_REJECTIONS and detail["error"] == ""

    page = detail_page(client, batch_id)
    assert "Archive refused (compression_ratio)" in page
    assert "Process again" not in page, "nothing is left to process: a retry could only fail again"
    assert client.post(reverse("upload-retry", args=[batch_id])).status_code == 409
    assert Series.objects.get().status == SeriesStatus.HELD_BURNED_IN


def test_a_refused_archive_among_good_files_keeps_the_good_ones(client, coordinator, tmp_path,
                                                                django_capture_on_commit_callbacks):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=62)
    good = [(p.name, p.read_bytes()) for p in sorted(next(folder.iterdir()).glob("*.dcm"))]
    response = api_upload(client, [("bomb.zip", zip_bomb()), *good], django_capture_on_commit_callbacks)
    assert response.status_code == 201, response.content
    batch = UploadBatch.objects.get(pk=response.json()["id"])
    assert batch.state == BatchOutcome.DONE_WITH_REJECTIONS
    assert batch.accepted_count == len(good) and batch.rejected_count == 1 and batch.file_count == len(good) + 1
    assert Case.objects.count() == 1


# Item 2: a refused upload is kept on record, under an id that is never given again.
def test_a_refused_upload_is_recorded_and_its_id_not_reused(client, coordinator, tmp_path, settings,
                                                            django_capture_on_commit_callbacks):
    response = api_upload(client, [("bomb.zip", zip_bomb())], django_capture_on_commit_callbacks)
    assert response.status_code == 400
    refused_id = response.json()["id"]

    detail = client.get(reverse("upload-detail", args=[refused_id]))
    assert detail.status_code == 200, "the coordinator can look the refused upload up later"
    assert response.json()["outcome"] == detail.json()["outcome"] == BatchOutcome.REJECTED
    [result] = detail.json()["results"]
    assert result["outcome"] == FileOutcome.REJECTED and result["reason"] == "archive_compression_ratio"
    assert "expands more than 100 times" in result["message"]
    assert refused_id in [b["id"] for b in client.get(reverse("upload-list")).json()["results"]]
    listing = client.get(reverse("imaging:upload_list")).content.decode()
    assert f'href="{reverse("imaging:upload_detail", args=[refused_id])}"' in listing
    assert not (Path(settings.UPLOAD_STAGING_DIR) / str(refused_id)).exists()

    folder, _ = write_patient_study(tmp_path / "incoming", seed=63)
    good = [(p.name, p.read_bytes()) for p in sorted(next(folder.iterdir()).glob("*.dcm"))]
    next_id = api_upload(client, good, django_capture_on_commit_callbacks).json()["id"]
    assert next_id != refused_id
    assert UploadBatch.objects.get(pk=refused_id).state == BatchOutcome.REJECTED


def test_a_refused_upload_through_the_page_is_recorded(client, coordinator):
    response = client.post(reverse("imaging:upload_create"), {"files": [named(zip_bomb(), "bomb.zip")]})
    batch = UploadBatch.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{batch.pk}/")
    page = detail_page(client, batch.pk)
    assert "Nothing was stored" in page and "Archive refused (compression_ratio)" in page
    assert "Process again" not in page


# Item 3: the status says what happened, on the page and in the API.
def test_all_files_rejected_says_nothing_was_stored(client, coordinator, tmp_path,
                                                    django_capture_on_commit_callbacks):
    items = [item for item in seven_bad_files(tmp_path) if item[2] not in ("held_burned_in",)]
    response = api_upload(client, items, django_capture_on_commit_callbacks)
    batch_id = response.json()["id"]
    detail = client.get(reverse("upload-detail", args=[batch_id])).json()
    assert detail["outcome"] == BatchOutcome.REJECTED
    assert detail["status_display"] == "Nothing stored: every file rejected"
    assert detail["summary"] == "Nothing was stored: all 6 files were rejected. The reasons are listed per file."
    page = detail_page(client, batch_id)
    assert "Nothing was stored: all 6 files were rejected" in page
    assert "Done" not in page
    assert not Case.objects.exists()


def test_a_burned_in_series_is_shown_held_not_accepted(client, coordinator, tmp_path,
                                                       django_capture_on_commit_callbacks):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=64)
    series = sorted(p for p in folder.iterdir() if p.is_dir())
    held = sorted(series[0].glob("*.dcm"))
    items = [(p.name, changed(p, _burned_in)) for p in held]
    items += [(p.name, p.read_bytes()) for p in sorted(series[1].glob("*.dcm"))]
    response = api_upload(client, items, django_capture_on_commit_callbacks)
    batch_id = response.json()["id"]
    detail = client.get(reverse("upload-detail", args=[batch_id])).json()

    assert detail["outcome"] == BatchOutcome.DONE_WITH_HOLDS
    assert detail["accepted_count"] == len(items) and detail["held_count"] == len(held)
    assert "held from readers" in detail["summary"] and "Cases page" in detail["summary"]
    held_results = [r for r in detail["results"] if r["reason"] == "held_burned_in"]
    assert len(held_results) == len(held)
    assert all("burned-in annotation" in r["message"] for r in held_results)

    page = detail_page(client, batch_id)
    assert "Done, some series held for review" in page
    assert page.count('class="warn">Stored, held for review') == len(held)
    assert reverse("imaging:case_list") in page


# Item 4: the answer names each uploaded item's neutral name, in the order sent, so the sender can pair it with
# the file names only it knows; the server keeps none of them.
def test_the_upload_answer_pairs_each_item_with_its_neutral_name(client, coordinator, tmp_path,
                                                                django_capture_on_commit_callbacks):
    from tests.imaging.test_ingest import all_database_text

    items = seven_bad_files(tmp_path)
    response = api_upload(client, items, django_capture_on_commit_callbacks)
    answer = response.json()
    assert len(answer["items"]) == len(items)
    detail = client.get(reverse("upload-detail", args=[answer["id"]])).json()
    reason_by_name = {r["name"]: r["reason"] for r in detail["results"]}
    assert [reason_by_name[stored] for stored in answer["items"]] == [reason for *_, reason in items]
    assert detail["items"] == answer["items"]
    assert "DOE_JANE" not in all_database_text()

    page = client.post(reverse("imaging:upload_create"), {"files": [named(items[0][1], items[0][0])]},
                       HTTP_ACCEPT="application/json")
    assert page.status_code == 201 and page.json()["items"] == ["file-000000"]


@pytest.mark.django_db
def test_a_series_stored_by_another_run_of_the_batch_keeps_its_outcome(tmp_path, monkeypatch):
    """Two runs of one batch (a worker taken for dead that was only slow, and its replacement): when the other run has
    stored a series, this run's failing store leaves the stored outcomes as they are and the batch finishes."""
    from django.db import IntegrityError

    from apps.imaging.services import ingest, uploads
    from apps.jobs.models import JobStatus

    folder, _ = write_patient_study(tmp_path / "incoming", seed=11)
    batch = uploads.stage_path(CoordinatorFactory().institution, None, folder)
    real_store = ingest.store_series

    def stored_meanwhile(batch, files):
        real_store(batch, files)  # the other run
        raise IntegrityError("duplicate key value violates unique constraint")  # this run's own attempt

    monkeypatch.setattr(ingest, "store_series", stored_meanwhile)
    ingest.process_batch(batch.pk)
    batch.refresh_from_db()
    assert batch.status == JobStatus.DONE, batch.error
    outcomes = list(batch.results.values_list("outcome", flat=True))
    assert outcomes and set(outcomes) == {FileOutcome.ACCEPTED}
    assert batch.results.count() == len({r.name for r in batch.results.all()}) == batch.file_count
