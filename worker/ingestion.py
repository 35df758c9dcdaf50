"""Ingestion tasks: thin doors onto apps.imaging.services.ingest."""

import logging

from celery import shared_task

from apps.imaging.services import ingest

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OSError, ConnectionError, TimeoutError)


@shared_task(
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
    acks_late=True,
)
def process_upload_batch(self, *, batch_id: int) -> None:
    """Processes a staged upload; running it twice stores nothing twice."""
    try:
        ingest.process_batch(batch_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("Upload %s failed", batch_id)
        ingest.mark_failed(batch_id, f"{type(exc).__name__}: the upload could not be processed; it can be retried.")
        raise
