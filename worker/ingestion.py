"""Ingestion tasks: thin doors onto apps.imaging.services.ingest."""

from celery import shared_task

from apps.imaging.services import ingest
from worker.failures import run_and_record


@shared_task(bind=True, max_retries=5, acks_late=True)
def process_upload_batch(self, *, batch_id: int) -> None:
    """Processes a staged upload; running it twice stores nothing twice."""
    run_and_record(
        self,
        lambda: ingest.process_batch(batch_id),
        # The exception text is not shown: it could quote a header value.
        lambda exc: ingest.mark_failed(
            batch_id, f"{type(exc).__name__}: the upload could not be processed; it can be retried."
        ),
        f"Upload {batch_id}",
    )
