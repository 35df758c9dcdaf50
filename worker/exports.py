"""Export tasks: thin doors onto apps.analysis.services."""

import logging

from celery import shared_task

from apps.analysis import services
from worker.ingestion import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=3,
    acks_late=True,
)
def build_export(self, *, job_id: int) -> None:
    """Builds an export file; running it twice leaves one file and one finished job."""
    try:
        services.run_export_job(job_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("Export job %s failed", job_id)
        services.mark_failed(job_id, f"{type(exc).__name__}: {exc}")
        raise
