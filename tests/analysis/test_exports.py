"""CSV exports: content, unblinding, escaping, unicode, empty and in-progress studies, the command and jobs."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from apps.analysis import exports, services
from apps.analysis.exports import LONG_COLUMNS, PATIENT_COLUMNS, SCORE_AUDIT_COLUMNS, format_cell, safe_text
from apps.analysis.models import ExportJob, ExportKind
from apps.analysis.stats.validation import SCORE_COLUMNS
from apps.imaging.models import JobStatus
from apps.studies.models import ReadingTask, Score, ScoreAudit, TaskStatus
from apps.studies.services import reading
from tests.analysis.world import build_world, read
from tests.factories import AdminFactory, ReaderStudyFactory
from worker.exports import build_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


@pytest.fixture
def world(db):
    return build_world()


def download(client, study, kind: str) -> str:
    response = client.get(f"/analysis/studies/{study.pk}/exports/{kind}.csv")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return b"".join(response.streaming_content).decode("utf-8")


def as_frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_long_export_has_one_row_per_score_with_the_unblinded_version(admin_client, world) -> None:
    read(world)
    frame = as_frame(download(admin_client, world.study, "long"))
    assert list(frame.columns) == list(LONG_COLUMNS)
    assert len(frame) == Score.objects.filter(task__study=world.study).count() > 0
    score = Score.objects.select_related("task__case", "task__reader", "item").first()
    row = frame[(frame["case_id"] == score.task.case.code) & (frame["reader"] == score.task.reader.pseudonym)
                & (frame["item"] == score.item.key) & (frame["task_position"] == score.task.position)]
    assert row["version"].item() == score.task.version
    assert row["score"].item() == score.value
    assert row["site"].item() == score.task.case.institution.pseudonym
    assert row["reader_site"].item() == score.task.reader.institution.pseudonym
    assert set(frame["version"]) == {"conventional", "dl"}
    assert frame["calibration"].dtype == bool
    assert frame["created_at"].str.endswith("Z").all()
    assert "Hospital" not in download(admin_client, world.study, "long")  # site names never, pseudonyms only


def test_score_audit_export_has_every_change_with_old_and_new_scores(admin_client, world) -> None:
    reader = world.readers[0]
    read(world, readers=world.readers[1:])
    read(world, submit_fraction=0.5, readers=[reader])  # a reader who has not finished may still revise
    task = ReadingTask.objects.filter(study=world.study, reader=reader, status=TaskStatus.SUBMITTED).first()
    item = world.study.items.get(key="noise")
    panel = reading.panels_of(task)[0]
    before = Score.objects.get(task=task, panel=panel, item=item).value
    revised = 1 if before != 1 else 5
    reading.autosave(reader, task, panel, {"noise": revised})

    frame = as_frame(download(admin_client, world.study, "score_audit"))
    assert list(frame.columns) == list(SCORE_AUDIT_COLUMNS)
    assert len(frame) == ScoreAudit.objects.filter(score__task__study=world.study).count()
    assert frame["old_score"].isna().sum() == Score.objects.filter(task__study=world.study).count(), (
        "each score's first setting has no old score")
    rows = frame[(frame["reader"] == reader.pseudonym) & (frame["task_position"] == task.position)
                 & (frame["panel"] == panel) & (frame["item"] == "noise")]
    assert rows["old_score"].isna().tolist() == [True, False]
    assert rows["new_score"].tolist() == [before, revised] and rows["old_score"].iloc[1] == before
    assert rows["changed_by"].tolist() == [reader.pseudonym] * 2
    assert rows["version"].iloc[0] == task.version and rows["site"].iloc[0] == task.case.institution.pseudonym
    assert frame["changed_at"].str.endswith("Z").all()
    assert "Hospital" not in download(admin_client, world.study, "score_audit")


def test_only_admins_download_the_score_audit(client, world) -> None:
    read(world)
    client.force_login(world.readers[0])
    assert client.get(f"/analysis/studies/{world.study.pk}/exports/score_audit.csv").status_code in (302, 403, 404)


def test_long_export_feeds_run_analysis(admin_client, world) -> None:
    read(world)
    frame = as_frame(download(admin_client, world.study, "long"))
    assert set(SCORE_COLUMNS) <= set(frame.columns)
    clean = exports.analysis_scores(frame)
    assert len(clean) == len(frame)


def test_paired_mode_takes_each_scores_version_from_its_panel(admin_client) -> None:
    world = build_world(mode="paired", cases_per_site=1, sequences=("T2W",))
    read(world)
    frame = as_frame(download(admin_client, world.study, "long"))
    for row in frame.itertuples():
        task = world.study.tasks.get(case__code=row.case_id, reader__pseudonym=row.reader, sequence=row.sequence)
        assert row.version == (task.left_version if row.panel == "A" else task.right_version)
    wide = as_frame(download(admin_client, world.study, "wide"))
    assert {"overall_quality_conventional", "overall_quality_dl"} <= set(wide.columns)
    assert len(wide) == world.study.tasks.count()


def test_study_in_progress(admin_client, world) -> None:
    read(world, submit_fraction=0.5, partial=1)
    long = as_frame(download(admin_client, world.study, "long"))
    assert set(long["task_status"]) == {"submitted", "opened"}
    assert long.loc[long["task_status"] == "opened", "task_submitted_at"].isna().all()
    kept = exports.analysis_scores(long)
    assert (kept["task_status"] == "submitted").all() and len(kept) < len(long)
    wide = as_frame(download(admin_client, world.study, "wide"))
    assert len(wide) == world.study.tasks.count()
    pending = wide[wide["task_status"] == TaskStatus.PENDING]
    assert pending["overall_quality"].isna().all() and pending["submitted_at"].isna().all()


def test_empty_study_gives_headers_only(admin_client) -> None:
    study = ReaderStudyFactory()
    for kind in exports.CSV_EXPORTS:
        text = download(admin_client, study, kind)
        frame = as_frame(text)
        assert frame.empty and len(frame.columns) > 3, kind
        assert text.count("\n") == 1


def test_csv_injection_is_neutralised_in_text_columns_only(admin_client, world) -> None:
    case = world.cases[0]
    case.tumour_type, case.age = '=HYPERLINK("http://evil")', 44
    case.save()
    site = case.institution
    site.pseudonym = "@SUM(A1)"
    site.save()
    reader = world.readers[1]
    reader.pseudonym = "+R2"
    reader.save()
    read(world)
    patients = as_frame(download(admin_client, world.study, "patients"))
    assert patients.loc[patients["case_id"] == case.code, "tumor_type"].item() == "'=HYPERLINK(\"http://evil\")"
    assert patients.loc[patients["case_id"] == case.code, "site"].item() == "'@SUM(A1)"
    long = download(admin_client, world.study, "long")
    assert "'+R2" in long and "\n+R2" not in long and ",+R2" not in long
    for line in long.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.startswith(("=", "+", "@")), line


def test_formatting_rules() -> None:
    assert safe_text("-1") == "'-1" and safe_text("\tx") == "'\tx" and safe_text("ok") == "ok"
    assert format_cell(-1.5, "float") == "-1.5" and format_cell(-2, "int") == "-2"
    assert format_cell(None, "int") == "NA" and format_cell("", "text") == "NA"
    assert format_cell(True, "bool") == "TRUE"


def test_unicode_and_quoting_survive_a_round_trip(admin_client, world) -> None:
    case = world.cases[0]
    case.tumour_type = 'Astrozytom, "IDH-mutiert" – 星形細胞腫 🧠\nzweite Zeile'
    case.age = 61
    case.save()
    site = case.institution
    site.pseudonym = "Zürich–東京"
    site.save()
    response = admin_client.get(f"/analysis/studies/{world.study.pk}/exports/patients.csv")
    raw = b"".join(response.streaming_content)
    assert not raw.startswith(b"\xef\xbb\xbf")  # no BOM: R's read.csv would put it in the first column name
    frame = pd.read_csv(io.BytesIO(raw))
    row = frame[frame["case_id"] == case.code]
    assert row["tumor_type"].item() == case.tumour_type
    assert row["site"].item() == "Zürich–東京"
    assert list(frame.columns) == list(PATIENT_COLUMNS)


def test_assignment_export_is_the_stored_assignment(admin_client, world) -> None:
    frame = as_frame(download(admin_client, world.study, "assignment"))
    assert len(frame) == world.study.tasks.count()
    assert {"reader", "position", "case", "version", "calibration"} <= set(frame.columns)


def test_unknown_kind_is_404(admin_client, world) -> None:
    assert admin_client.get(f"/analysis/studies/{world.study.pk}/exports/secrets.csv").status_code == 404


def test_export_scores_command_writes_every_csv(world, tmp_path: Path) -> None:
    read(world)
    out = tmp_path / "out"
    call_command("export_scores", str(world.study.pk), f"--out={out}")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(exports.export_filename(world.study, k) for k in exports.CSV_EXPORTS)
    long = pd.read_csv(out / exports.export_filename(world.study, "long"))
    assert len(long) == Score.objects.filter(task__study=world.study).count()
    with pytest.raises(CommandError, match="No study"):
        call_command("export_scores", "999999", f"--out={out}")


def test_export_job_runs_twice_into_one_file(admin_client, world, django_capture_on_commit_callbacks) -> None:
    read(world)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/api/analysis/studies/{world.study.pk}/export-jobs/", {"kind": "long"})
    assert response.status_code == 202
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.DONE and job.progress == 1.0
    first = job.file.name
    build_export.delay(job_id=job.pk)  # a re-delivered message
    ExportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)  # as if the worker died mid-way
    build_export.delay(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.file.name == first
    _, files = default_storage.listdir(f"exports/study{world.study.pk}")
    assert len(files) == 1
    detail = admin_client.get(f"/api/analysis/export-jobs/{job.pk}/").json()
    assert detail["status"] == "done" and detail["rows"] == job.rows
    downloaded = b"".join(admin_client.get(detail["download_url"]).streaming_content).decode()
    assert downloaded == download(admin_client, world.study, "long")


def test_failed_job_keeps_its_error(world, monkeypatch) -> None:
    job = ExportJob.objects.create(study=world.study, kind=ExportKind.LONG)
    monkeypatch.setattr(exports, "write_csv", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        build_export.delay(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "ZeroDivisionError" in job.error


def test_report_job_builds_the_pdf() -> None:
    world = build_world(cases_per_site=4, sequences=("T2W",), readers_per_case=2)
    read(world)
    job = ExportJob.objects.create(study=world.study, kind=ExportKind.REPORT)
    services.run_export_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    with job.file.open("rb") as handle:
        assert handle.read(4) == b"%PDF"
