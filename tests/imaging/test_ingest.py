"""Ingestion end to end: staged files -> validated -> de-identified -> stored, and every bad input."""

import io
import logging
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.imaging.models import (
    BatchOutcome,
    Case,
    FileOutcome,
    Instance,
    Series,
    UploadBatch,
    UploadFileResult,
)
from apps.imaging.services import ingest, storage, uploads
from apps.institutions.services import add_site
from apps.jobs.models import JobStatus
from tests.imaging.dicom_samples import write_patient_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return add_site("north", "North General Hospital")


def stored_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def all_database_text() -> str:
    """Every value of every row of every table, as one string, to search for leaked identifiers."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                chunks.append(" ".join(str(v) for v in row))
    return "\n".join(chunks)


def import_folder(path: Path, site_code: str) -> tuple[str, UploadBatch]:
    out = io.StringIO()
    try:
        call_command("import_dicom", str(path), site=site_code, stdout=out)
    except CommandError as exc:
        out.write(f"\nCommandError: {exc}")
    return out.getvalue(), UploadBatch.objects.latest("pk")


def test_import_dicom_leaves_no_planted_phi_anywhere(tmp_path, settings, site, caplog):
    caplog.set_level(logging.DEBUG)
    folder, planted = write_patient_study(tmp_path / "incoming", seed=1)
    output, batch = import_folder(folder, site.code)

    assert batch.state == BatchOutcome.DONE, output
    assert batch.rejected_count == 0
    assert batch.accepted_count == batch.file_count > 0
    assert "accepted" in output and "0 rejected" in output
    files = stored_files(settings)
    assert len(files) == batch.accepted_count
    database = all_database_text()
    logs = caplog.text
    for value in planted:
        needles = {value, value.upper(), value.replace(" ", "^")}
        for needle in needles:
            raw = needle.encode()
            for path in files:
                assert raw not in path.read_bytes(), f"planted {needle!r} found in {path.name}"
                assert needle not in str(path), f"planted {needle!r} in a file name"
            assert needle not in database, f"planted {needle!r} found in the database"
            assert needle not in logs, f"planted {needle!r} found in the log"
            assert needle not in output, f"planted {needle!r} printed by the command"
    assert not (Path(settings.UPLOAD_STAGING_DIR) / str(batch.pk)).exists(), "staged originals must be removed"
    for path in files:
        ds = pydicom.dcmread(path)
        assert not any(element.tag.is_private for element in ds.iterall())
        assert ds.PatientIdentityRemoved == "YES"


def test_sequences_classified_and_series_whole(tmp_path, site):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=2)
    _, batch = import_folder(folder, site.code)
    case = Case.objects.get()
    assert case.institution == site
    assert sorted(case.series.values_list("sequence", flat=True)) == ["FLAIR", "T1W_POST", "T2W"]
    for series in case.series.all():
        assert series.instances.count() == len(set(series.instances.values_list("slice_location", flat=True)))
        assert series.rows > 0 and series.columns > 0


def test_reupload_is_idempotent(tmp_path, site):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=3)
    _, first = import_folder(folder, site.code)
    instances = Instance.objects.count()
    output, second = import_folder(folder, site.code)
    assert second.state == BatchOutcome.DONE
    assert second.duplicate_count == second.file_count == first.file_count
    assert second.accepted_count == 0
    assert Instance.objects.count() == instances
    assert Case.objects.count() == 1 and Series.objects.count() == 3
    assert "already stored" in output


def test_rejected_file_makes_command_fail_and_loses_nothing(tmp_path, site):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=4)
    (folder / "notes.txt").write_text("not an image")
    output, batch = import_folder(folder, site.code)
    assert "CommandError: 1 file(s) rejected" in output
    assert "not_dicom" in output
    assert batch.state == BatchOutcome.DONE_WITH_REJECTIONS
    assert batch.rejected_count == 1
    assert batch.accepted_count == batch.file_count - 1


def first_file(folder: Path) -> Path:
    return sorted(p for p in folder.rglob("*.dcm"))[0]


def mutate(path: Path, change) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


def _drop_pixels(ds):
    del ds.PixelData


def _ct(ds):
    ds.Modality = "CT"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"


def _absurd(ds):
    ds.Rows = 60000


def _other_patient(ds):
    ds.PatientID = "SOMEONE-ELSE-99"


BAD_FILES = {
    "not_dicom": lambda p: p.write_bytes(b"%PDF-1.4 this is not DICOM at all" * 20),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "no_pixel_data": lambda p: mutate(p, _drop_pixels),
    "not_mr": lambda p: mutate(p, _ct),
    "absurd_dimensions": lambda p: mutate(p, _absurd),
}


@pytest.mark.parametrize("reason", sorted(BAD_FILES))
def test_each_bad_file_is_rejected_with_its_reason(tmp_path, site, reason):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=5)
    victim = first_file(folder)
    BAD_FILES[reason](victim)
    _, batch = import_folder(folder, site.code)
    rejected = UploadFileResult.objects.get(batch=batch, outcome=FileOutcome.REJECTED)
    assert rejected.reason == reason
    assert rejected.message
    assert rejected.name == victim.relative_to(folder).as_posix()
    assert batch.accepted_count == batch.file_count - 1, "the other files are kept"


def test_several_patients_in_one_series_is_refused_for_that_series(tmp_path, site):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=6)
    victim = first_file(folder)
    mutate(victim, _other_patient)
    _, batch = import_folder(folder, site.code)
    reasons = set(batch.results.filter(outcome=FileOutcome.REJECTED).values_list("reason", flat=True))
    assert reasons == {"mixed_patients"}
    assert batch.rejected_count >= 1
    assert Series.objects.count() == 2, "the other two series are stored"


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "entries",
    [
        {"../../escape.dcm": b"x" * 200},
        {"/etc/absolute.dcm": b"x" * 200},
        {"inner.zip": zip_bytes({"a.dcm": b"x" * 200})},
        {"bomb.bin": b"\0" * (64 * 1024 * 1024)},
    ],
    ids=["traversal", "absolute", "nested", "bomb"],
)
def test_hostile_zip_is_refused_without_writing_anything(tmp_path, settings, site, entries):
    settings.INGEST_MAX_ARCHIVE_RATIO = 100
    outside = tmp_path / "escape.dcm"
    data = zip_bytes(entries)
    with pytest.raises(uploads.UploadRefused) as refused:
        uploads.stage_files(site, None, [("upload.zip", io.BytesIO(data))], channel="api")
    batch = refused.value.batch
    batch.refresh_from_db()
    assert batch.state == BatchOutcome.REJECTED, "kept on record: the archive is one rejected item"
    [result] = batch.results.all()
    assert result.outcome == FileOutcome.REJECTED and result.message.startswith("Archive refused")
    assert batch.items == [result.name] and batch.file_count == batch.rejected_count == 1
    assert not outside.exists()
    assert not Path("/etc/absolute.dcm").exists()
    assert not (Path(settings.UPLOAD_STAGING_DIR) / str(batch.pk)).exists()
    assert Case.objects.count() == 0 and not stored_files(settings)


def test_zip_upload_is_unpacked_and_imported(tmp_path, site):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=7)
    data = zip_bytes({p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.dcm")})
    batch = uploads.stage_files(site, None, [("study.zip", io.BytesIO(data))], channel="web")
    batch = ingest.process_batch(batch.pk)
    assert batch.state == BatchOutcome.DONE
    assert batch.accepted_count == batch.file_count == len(list(folder.rglob("*.dcm")))


class WorkerCrashed(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the service may swallow it."""


def test_crash_mid_batch_leaves_whole_series_and_a_retryable_batch(tmp_path, settings, site, monkeypatch):
    folder, _ = write_patient_study(tmp_path / "incoming", seed=8)
    batch = uploads.stage_path(site, None, folder)
    real_encode = storage.encode_dataset
    calls = {"n": 0}
    first_series_size = len(list(sorted(folder.iterdir())[0].glob("*.dcm")))

    def dying_encode(ds):
        calls["n"] += 1
        if calls["n"] == first_series_size + 2:
            raise WorkerCrashed
        return real_encode(ds)

    monkeypatch.setattr(storage, "encode_dataset", dying_encode)
    with pytest.raises(WorkerCrashed):
        ingest.process_batch(batch.pk)

    batch.refresh_from_db()
    assert batch.status == JobStatus.RUNNING
    assert Series.objects.count() == 1, "only the series finished before the crash is stored"
    series = Series.objects.get()
    assert series.instances.count() == first_series_size
    assert len(stored_files(settings)) == first_series_size, "no file of the interrupted series is left behind"
    assert (Path(settings.UPLOAD_STAGING_DIR) / str(batch.pk)).exists(), "originals kept for the retry"

    monkeypatch.setattr(storage, "encode_dataset", real_encode)
    batch = ingest.process_batch(batch.pk)
    assert batch.state == BatchOutcome.DONE
    assert batch.attempts == 2
    assert batch.accepted_count == batch.file_count
    assert Series.objects.count() == 3
    assert Instance.objects.count() == batch.file_count


def test_a_batch_is_shown_finished_only_once_its_staged_files_are_gone(tmp_path, site, monkeypatch):
    """Observers (the upload page, a C-STORE sender's test) poll the status; when it says finished, no
    identifiable staged file may be left, and a crash before the status is saved leaves a batch to re-run."""
    folder, _ = write_patient_study(tmp_path / "incoming", seed=9)
    batch = uploads.stage_path(site, None, folder)
    staged_when_finished = []
    real_save = UploadBatch.save

    def observed_save(self, *args, **kwargs):
        if self.status == JobStatus.DONE:
            staged_when_finished.append(uploads.staging_dir(self).exists())
            raise WorkerCrashed
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(UploadBatch, "save", observed_save)
    with pytest.raises(WorkerCrashed):
        ingest.process_batch(batch.pk)
    assert staged_when_finished == [False]
    batch.refresh_from_db()
    assert batch.status == JobStatus.RUNNING

    monkeypatch.setattr(UploadBatch, "save", real_save)
    batch = ingest.process_batch(batch.pk)
    assert batch.state == BatchOutcome.DONE
    assert batch.accepted_count == batch.file_count == Instance.objects.count()


def test_identifying_file_and_folder_names_are_not_stored(tmp_path, site):
    """Hospital exports often name folders and files after the patient; only plain image numbers are kept."""
    folder, planted = write_patient_study(tmp_path / "incoming", seed=9)
    family = planted[1]
    renamed = tmp_path / "export" / f"{family}_MRI_2024-03-01"
    for index, path in enumerate(sorted(folder.rglob("*.dcm"))):
        target = renamed / path.parent.name / (f"{family}_{index}.dcm" if index % 2 else path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    output, batch = import_folder(tmp_path / "export", site.code)
    assert batch.state == BatchOutcome.DONE and batch.accepted_count == batch.file_count
    names = list(batch.results.values_list("name", flat=True))
    assert all(family not in name for name in names), names
    assert family not in output and family not in all_database_text()
    assert any(name.endswith("/IM0001.dcm") for name in names), "plain image numbers are kept"
    assert len({name.split("/")[0] for name in names}) == 1, "one neutral name per original folder"
