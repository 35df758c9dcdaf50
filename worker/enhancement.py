"""Enhancement tasks (queue "gpu"): thin doors onto apps.imaging.services.enhancement_runner."""

from celery import shared_task

from apps.imaging.services import enhancement
from worker.failures import run_and_record


@shared_task(bind=True, max_retries=3, acks_late=True)
def enhance_series(self, *, job_id: int) -> None:
    """Produces the DL version of one series; safe to run twice."""
    # Imported here so that web processes, which only queue this task, never load torch.
    from apps.imaging.services import enhancement_runner

    run_and_record(
        self,
        lambda: enhancement_runner.run_job(job_id),
        lambda exc: enhancement.mark_failed(job_id, f"{type(exc).__name__}: {exc}"),
        f"Enhancement job {job_id}",
    )
