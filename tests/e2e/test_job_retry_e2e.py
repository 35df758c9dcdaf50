"""The job pages in a browser: a stopped upload, a failed enhancement and a failed export each say why and offer
Retry (and nothing else does); retrying the export from its page builds it."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from apps.analysis.models import ExportJob, ExportKind
from apps.imaging.models import EnhancementJob, UploadBatch
from apps.imaging.services import uploads
from apps.jobs import lifecycle
from apps.jobs.models import JobStatus
from tests.factories import PASSWORD, AdminFactory, CoordinatorFactory, ReaderStudyFactory, SeriesFactory
from tests.imaging.dicom_samples import write_patient_study

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "var" / "shots"


def log_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()


def stopped(job, attempts: int) -> None:
    """As the sweep leaves a job whose worker died on its last allowed attempt."""
    then = timezone.now() - timedelta(hours=1)
    type(job).objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=attempts, max_attempts=attempts,
                                               started_at=then, heartbeat_at=then, worker="gpu-host-2:4711")
    job.refresh_from_db()
    lifecycle.recover(job)


def test_failed_jobs_say_why_and_are_retried_from_their_pages(page, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    coordinator = CoordinatorFactory()
    folder, _ = write_patient_study(tmp_path / "incoming", seed=5)
    batch = uploads.stage_path(coordinator.institution, coordinator, folder / "01")
    stopped(batch, attempts=3)
    series = SeriesFactory(case__institution=coordinator.institution)
    failed = EnhancementJob.objects.create(series=series, noise_reduction_factor=8.0)
    lifecycle.start(EnhancementJob, failed.pk)
    lifecycle.fail(EnhancementJob, failed.pk, "RuntimeError: CUDA out of memory")
    EnhancementJob.objects.create(series=series, noise_reduction_factor=4.0, status=JobStatus.DONE)

    log_in(page, coordinator)
    page.goto(f"/imaging/uploads/{batch.pk}/")
    text = page.inner_text("main")
    assert "Failed" in text and "(attempt 3 of 3)" in text and "no heartbeat since" in text
    assert page.locator("button", has_text="Process again").count() == 1
    page.screenshot(path=str(SHOTS / "jobs-upload-stopped.png"), full_page=True)
    page.goto("/imaging/enhancement/")
    assert "CUDA out of memory" in page.inner_text("main")
    assert page.locator("button", has_text="Retry").count() == 1, "only the failed job offers a retry"
    page.screenshot(path=str(SHOTS / "jobs-enhancement-failed.png"), full_page=True)

    page.context.clear_cookies()
    export = ExportJob.objects.create(study=ReaderStudyFactory(), kind=ExportKind.ASSIGNMENT)
    stopped(export, attempts=3)
    log_in(page, AdminFactory())
    page.goto(f"/analysis/jobs/{export.pk}/")
    text = page.inner_text("main")
    assert "stopped: no heartbeat since" in text and "(limit 300 s) after 3 of 3 attempts" in text
    page.screenshot(path=str(SHOTS / "jobs-export-stopped.png"), full_page=True)
    page.click("button:has-text('Retry')")
    page.wait_for_selector("text=Download")
    export.refresh_from_db()
    assert export.status == JobStatus.DONE and export.attempts == 4
    assert "Done (after 4 attempts)" in page.inner_text("main")
    assert page.locator("button", has_text="Retry").count() == 0
    page.screenshot(path=str(SHOTS / "jobs-export-retried.png"), full_page=True)
    assert not page.errors
    assert UploadBatch.objects.get(pk=batch.pk).status == JobStatus.FAILED
