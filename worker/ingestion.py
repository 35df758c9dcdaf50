"""Ingestion tasks: thin doors onto apps.imaging.services.ingest, under the job lifecycle (apps.jobs)."""

from celery import shared_task

from apps.imaging.models import UploadBatch
from apps.imaging.services import ingest
from apps.jobs import lifecycle


@shared_task(acks_late=True)
def process_upload_batch(*, batch_id: int) -> None:
    """Processes a staged upload; running it twice stores nothing twice."""
    lifecycle.run_task(UploadBatch, batch_id, lambda: ingest.process_batch(batch_id), ingest.public_error)
