"""Export tasks: thin doors onto apps.analysis.services."""

from celery import shared_task

from apps.analysis import services
from worker.failures import run_and_record


@shared_task(bind=True, max_retries=3, acks_late=True)
def build_export(self, *, job_id: int) -> None:
    """Builds an export file; running it twice leaves one file and one finished job."""
    run_and_record(
        self,
        lambda: services.run_export_job(job_id),
        lambda exc: services.mark_failed(job_id, f"{type(exc).__name__}: {exc}"),
        f"Export job {job_id}",
    )
