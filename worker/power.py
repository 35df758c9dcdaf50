"""Power-analysis tasks: thin doors onto apps.analysis.power, under the job lifecycle (apps.jobs)."""

from celery import shared_task

from apps.analysis import power
from apps.analysis.models import PowerAnalysisJob
from apps.jobs import lifecycle


@shared_task(acks_late=True)
def run_power_analysis(*, job_id: int) -> None:
    """Simulates the job's grid and stores its curves; running it twice leaves one finished job."""
    lifecycle.run_task(
        PowerAnalysisJob, job_id, lambda: power.run_power_job(job_id), lambda exc: f"{type(exc).__name__}: {exc}"
    )
