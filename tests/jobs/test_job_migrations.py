"""Imaging migration 0012 keeps every upload and its status: pending, processing and failed become the shared job
statuses queued, running and failed, and a finished upload becomes done with what it came to in ``outcome``; going
back restores the old statuses."""

import pytest

from tests.migration_states import migrate_to, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("imaging", "0011_remove_series_counterpart")]
AFTER = [("imaging", "0012_background_job_lifecycle")]
OLD_TO_NEW = {
    "pending": ("queued", ""), "processing": ("running", ""), "failed": ("failed", ""), "done": ("done", "done"),
    "done_with_holds": ("done", "done_with_holds"), "done_with_rejections": ("done", "done_with_rejections"),
    "rejected": ("done", "rejected"),
}


def migrate(targets):
    """Imaging at ``targets``, every other app at a state that fits; the models of that state."""
    return migrate_to(targets)


def test_uploads_keep_their_status_across_the_lifecycle_migration_and_back():
    try:
        old = migrate(BEFORE)
        Institution, Batch = old.get_model("institutions", "Institution"), old.get_model("imaging", "UploadBatch")
        site = Institution.objects.create(name="North", code="north", pseudonym="Site N")
        ids = {status: Batch.objects.create(institution=site, status=status, attempts=1).pk for status in OLD_TO_NEW}

        Batch = migrate(AFTER).get_model("imaging", "UploadBatch")
        migrated = {status: Batch.objects.get(pk=pk) for status, pk in ids.items()}
        assert {status: (b.status, b.outcome) for status, b in migrated.items()} == OLD_TO_NEW
        assert all(b.attempts == 1 and b.max_attempts >= 1 and b.heartbeat_at is None for b in migrated.values())

        Batch = migrate(BEFORE).get_model("imaging", "UploadBatch")
        assert {status: Batch.objects.get(pk=pk).status for status, pk in ids.items()} == {s: s for s in OLD_TO_NEW}
    finally:
        migrate_to_latest()
