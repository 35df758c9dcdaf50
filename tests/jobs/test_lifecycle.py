"""The job lifecycle shared by uploads, enhancement and exports (apps/jobs/lifecycle.py), through the real services,
task doors, pages and API: claiming, heartbeats, transient errors, stale jobs and retries. Tasks run in this process
here; tests/jobs/test_killed_worker.py kills real workers."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.analysis.models import ExportJob, ExportKind
from apps.imaging.models import BatchOutcome, UploadBatch
from apps.imaging.services import ingest, uploads
from apps.institutions.services import add_site
from apps.jobs import lifecycle
from apps.jobs.models import ERROR_MAX_CHARS, JobStatus
from tests.factories import AdminFactory, ReaderStudyFactory
from tests.imaging.dicom_samples import write_patient_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def staged(tmp_path) -> UploadBatch:
    folder, _ = write_patient_study(tmp_path / "incoming", seed=11)
    return uploads.stage_path(add_site("east", "East Hospital"), None, folder)


@pytest.fixture
def export() -> ExportJob:
    return ExportJob.objects.create(study=ReaderStudyFactory(), kind=ExportKind.ASSIGNMENT)


def stopped_elsewhere(job, attempts: int, silent_for: float = 600) -> None:
    """As a job whose worker (on another host) died ``silent_for`` seconds ago looks in the database."""
    then = timezone.now() - timedelta(seconds=silent_for)
    type(job).objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=attempts, started_at=then, heartbeat_at=then, worker="gone:1"
    )
    job.refresh_from_db()


def test_a_transient_error_queues_the_upload_again_until_it_passes(staged, monkeypatch,
                                                                    django_capture_on_commit_callbacks):
    real, calls = ingest.group_by_series, []

    def flaky(paths):
        calls.append(len(paths))
        if len(calls) < 3:
            raise ConnectionError("database restarting")
        return real(paths)

    monkeypatch.setattr(ingest, "group_by_series", flaky)
    with django_capture_on_commit_callbacks(execute=True):
        uploads.enqueue_processing(staged)
    staged.refresh_from_db()
    assert len(calls) == 3
    assert staged.state == BatchOutcome.DONE and staged.attempts == 3 and staged.error == ""
    assert staged.accepted_count == staged.file_count


def test_a_transient_error_on_every_attempt_fails_the_upload_at_its_limit_without_echoing_it(
        staged, monkeypatch, django_capture_on_commit_callbacks, client):
    def down(paths):
        raise TimeoutError("PatientName=DOE^JANE")

    monkeypatch.setattr(ingest, "group_by_series", down)
    with pytest.raises(TimeoutError), django_capture_on_commit_callbacks(execute=True):
        uploads.enqueue_processing(staged)  # the last attempt's error reaches the worker's log
    staged.refresh_from_db()
    assert staged.status == JobStatus.FAILED and staged.attempts == staged.max_attempts == 3
    assert staged.error.startswith("TimeoutError") and "DOE" not in staged.error
    assert uploads.can_retry(staged), "its staged files are still there"

    monkeypatch.undo()
    client.force_login(AdminFactory())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/imaging/uploads/{staged.pk}/retry/")
    assert response.status_code == 202, response.content
    staged.refresh_from_db()
    assert staged.state == BatchOutcome.DONE and staged.attempts == 4 and staged.max_attempts == 6
    again = client.post(f"/api/imaging/uploads/{staged.pk}/retry/")
    assert again.status_code == 409 and "every file of this upload has its outcome" in again.json()["detail"]


def test_a_permanent_error_fails_the_job_at_once(export, monkeypatch):
    from apps.analysis import exports
    from worker.exports import build_export

    monkeypatch.setattr(exports, "write_csv", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        build_export.delay(job_id=export.pk)
    export.refresh_from_db()
    assert export.status == JobStatus.FAILED and export.attempts == 1 and export.error.startswith("ZeroDivisionError")
    assert export.finished_at is not None and lifecycle.can_retry(export)


def test_every_failure_reason_is_cut_to_the_same_length(export, staged):
    lifecycle.fail(ExportJob, export.pk, "x" * 5000)
    lifecycle.fail(UploadBatch, staged.pk, "y" * 5000)
    export.refresh_from_db()
    staged.refresh_from_db()
    assert len(export.error) == len(staged.error) == ERROR_MAX_CHARS and export.error.endswith("…")


def test_backoff_grows_and_is_capped():
    assert [lifecycle.backoff_seconds(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]


def test_a_job_is_claimed_once(export):
    assert lifecycle.start(ExportJob, export.pk).attempts == 1
    ExportJob.objects.filter(pk=export.pk).update(worker="elsewhere:7")
    assert lifecycle.start(ExportJob, export.pk) is None, "running with a fresh heartbeat on another worker"
    stopped_elsewhere(export, attempts=1)
    claimed = lifecycle.start(ExportJob, export.pk)
    assert claimed.attempts == 2 and claimed.worker == lifecycle.worker_identity()
    lifecycle.finish(claimed)
    assert lifecycle.start(ExportJob, export.pk) is None, "done"
    assert not lifecycle.can_retry(claimed)
    with pytest.raises(lifecycle.NotRetryable):
        lifecycle.retry(claimed)


def test_the_sweep_queues_a_stopped_job_again_and_it_finishes(export, django_capture_on_commit_callbacks):
    stopped_elsewhere(export, attempts=1)
    fresh = ExportJob.objects.create(study=export.study, kind=ExportKind.ASSIGNMENT)
    lifecycle.start(ExportJob, fresh.pk)
    with django_capture_on_commit_callbacks(execute=True):
        done = lifecycle.recover_stale_jobs()
    assert len(done) == 1 and "gone:1" in done[0] and "queued again automatically (attempt 2 of 3)" in done[0]
    export.refresh_from_db()
    fresh.refresh_from_db()
    assert export.status == JobStatus.DONE and export.attempts == 2 and export.file
    assert fresh.status == JobStatus.RUNNING, "a job whose worker beats is left alone"


def test_a_stopped_job_past_its_limit_fails_and_is_retried_from_its_page_and_the_api(
        export, client, django_capture_on_commit_callbacks):
    stopped_elsewhere(export, attempts=3)
    assert lifecycle.recover_stale_jobs() and lifecycle.recover_stale_jobs() == [], "recovered once"
    export.refresh_from_db()
    assert export.status == JobStatus.FAILED
    assert "The worker running it (gone:1) stopped: no heartbeat since" in export.error
    assert "after 3 of 3 attempts; it can be retried from its page" in export.error

    client.force_login(AdminFactory())
    page = client.get(reverse("analysis:job_detail", args=[export.pk])).content.decode()
    assert "(attempt 3 of 3)" in page and "no heartbeat since" in page and "Retry</button>" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("analysis:job_retry", args=[export.pk]))
    assert response.status_code == 302
    export.refresh_from_db()
    assert export.status == JobStatus.DONE and export.attempts == 4 and export.error == ""
    page = client.get(reverse("analysis:job_detail", args=[export.pk])).content.decode()
    assert "Retry</button>" not in page and "Download" in page

    refused = client.post(f"/api/analysis/export-jobs/{export.pk}/retry/")
    assert refused.status_code == 409 and "done" in refused.json()["detail"]
    stopped_elsewhere(export, attempts=4)
    lifecycle.fail(ExportJob, export.pk, "RuntimeError: disk full")
    with django_capture_on_commit_callbacks(execute=True):
        retried = client.post(f"/api/analysis/export-jobs/{export.pk}/retry/")
    assert retried.status_code == 202 and retried.json()["status"] == JobStatus.QUEUED
    detail = client.get(f"/api/analysis/export-jobs/{export.pk}/").json()
    assert detail["status"] == JobStatus.DONE and detail["attempts"] == 5 and detail["can_retry"] is False


def test_a_queued_job_whose_message_was_lost_is_sent_again(export, settings, django_capture_on_commit_callbacks):
    lifecycle.queue(export)
    old = timezone.now() - timedelta(seconds=settings.JOB_REQUEUE_SECONDS + 1)
    ExportJob.objects.filter(pk=export.pk).update(heartbeat_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        done = lifecycle.recover_stale_jobs()
    assert done == [f"ExportJob {export.pk}: queued since {timezone.localtime(old):%Y-%m-%d %H:%M:%S %Z}, sent again."]
    export.refresh_from_db()
    assert export.status == JobStatus.DONE and export.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_beats_while_the_task_runs(export, eager_tasks):
    eager_tasks.conf.task_always_eager = False  # as on a worker: a separate process whose death must be seen
    lifecycle.start(ExportJob, export.pk)
    export.refresh_from_db()
    started = export.heartbeat_at
    with lifecycle.Heartbeat(ExportJob, export.pk, every=0.05):
        time.sleep(0.5)
        export.refresh_from_db()
        assert export.heartbeat_at > started
    beaten = export.heartbeat_at
    time.sleep(0.2)
    export.refresh_from_db()
    assert export.heartbeat_at == beaten, "no beat once the task is over"
    ExportJob.objects.filter(pk=export.pk).update(worker="elsewhere:7")
    assert not lifecycle.beat(ExportJob, export.pk), "never beats for a job another worker took over"


def test_the_admin_runs_a_failed_export_again_and_says_which_jobs_cannot_be(client, export,
                                                                             django_capture_on_commit_callbacks):
    lifecycle.fail(ExportJob, export.pk, "the disk was full")
    done = ExportJob.objects.create(study=export.study, kind=ExportKind.ASSIGNMENT, status=JobStatus.DONE)
    client.force_login(AdminFactory())
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(reverse("admin:analysis_exportjob_changelist"),
                           {"action": "retry", "_selected_action": [export.pk, done.pk]}, follow=True)
    export.refresh_from_db()
    assert export.status == JobStatus.DONE and export.file and export.error == "", export.error
    text = page.content.decode()
    assert "1 queued again, 1 not retryable." in text and f"{done}:" in text
