"""The lifecycle fields every job shows in the API, alike for uploads, enhancement and exports."""

from rest_framework import serializers

from apps.jobs import lifecycle
from apps.jobs.models import BackgroundJob

JOB_FIELDS = ["status", "attempts", "max_attempts", "error", "created_at", "started_at", "finished_at",
              "heartbeat_at", "can_retry"]


class JobFields(serializers.Serializer):
    """Mixin for a job's model serializer: list ``*JOB_FIELDS`` in its ``Meta.fields``."""

    can_retry = serializers.SerializerMethodField(
        help_text="A retry is possible: the job failed, or its worker stopped (no heartbeat for the stale limit)."
    )

    def get_can_retry(self, job: BackgroundJob) -> bool:
        return lifecycle.can_retry(job)
