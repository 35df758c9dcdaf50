"""Export tasks: thin doors onto apps.analysis.services, under the job lifecycle (apps.jobs)."""

from celery import shared_task

from apps.analysis import services
from apps.analysis.models import ExportJob
from apps.jobs import lifecycle


@shared_task(acks_late=True)
def build_export(*, job_id: int) -> None:
    """Builds an export file; running it twice leaves one file and one finished job."""
    lifecycle.run_task(
        ExportJob, job_id, lambda: services.run_export_job(job_id), lambda exc: f"{type(exc).__name__}: {exc}"
    )
