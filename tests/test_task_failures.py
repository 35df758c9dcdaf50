"""The tasks' failure policy: transient errors are retried, and the last failure is recorded on the row."""

import pytest
from celery.exceptions import Retry

from apps.imaging.models import BatchStatus, UploadBatch
from apps.imaging.services import ingest
from tests.factories import InstitutionFactory
from worker.failures import backoff_seconds
from worker.ingestion import process_upload_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch():
    return UploadBatch.objects.create(institution=InstitutionFactory(), status=BatchStatus.PENDING)


def test_transient_error_is_retried_with_backoff(batch, monkeypatch):
    calls = []

    def flaky(batch_id):
        calls.append(batch_id)
        raise ConnectionError("database restarting")

    monkeypatch.setattr(ingest, "process_batch", flaky)
    retried = []
    monkeypatch.setattr(process_upload_batch, "retry",
                        lambda exc, countdown: retried.append(countdown) or Retry(exc=exc, when=countdown))
    with pytest.raises(Retry):
        process_upload_batch.run(batch_id=batch.pk)
    assert calls == [batch.pk] and retried == [backoff_seconds(0)]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PENDING, "not failed while retries remain"


def test_transient_error_after_the_last_retry_is_recorded(batch, monkeypatch):
    monkeypatch.setattr(ingest, "process_batch", lambda batch_id: (_ for _ in ()).throw(TimeoutError("slow")))
    process_upload_batch.push_request(retries=process_upload_batch.max_retries)
    try:
        with pytest.raises(TimeoutError):
            process_upload_batch.run(batch_id=batch.pk)
    finally:
        process_upload_batch.pop_request()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED and batch.error.startswith("TimeoutError")


def test_permanent_error_is_recorded_at_once_without_echoing_its_text(batch, monkeypatch):
    def broken(batch_id):
        raise ValueError("PatientName=DOE^JANE")

    monkeypatch.setattr(ingest, "process_batch", broken)
    with pytest.raises(ValueError):
        process_upload_batch.delay(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED
    assert "DOE" not in batch.error and "can be retried" in batch.error


def test_backoff_grows_and_is_capped():
    assert [backoff_seconds(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
