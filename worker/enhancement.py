"""Enhancement tasks (queue "gpu"): thin doors onto apps.imaging.services.enhancement_runner."""

import logging

from celery import shared_task

from apps.imaging.services import enhancement

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (ConnectionError, TimeoutError)


@shared_task(bind=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, max_retries=3, acks_late=True)
def enhance_series(self, *, job_id: int) -> None:
    """Produces the DL version of one series; safe to run twice."""
    # Imported here so that web processes, which only queue this task, never load torch.
    from apps.imaging.services import enhancement_runner

    try:
        enhancement_runner.run_job(job_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("Enhancement job %s failed", job_id)
        enhancement.mark_failed(job_id, f"{type(exc).__name__}: {exc}")
        raise
