"""The one lifecycle every background job shares (uploads, enhancement, exports, and any later job).

A concrete job model subclasses ``BackgroundJob`` and names the Celery task that runs it (``task_name``, a dotted
name, so no service imports a task module) and the keyword that task takes the row's id by (``task_id_kwarg``).
``apps.jobs.lifecycle`` is the only code that moves a job between statuses.
"""

from django.conf import settings
from django.db import models

ERROR_MAX_CHARS = 2000


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


def default_max_attempts() -> int:
    """READERSTUDY_JOB_MAX_ATTEMPTS: how many times a job is started before it stays failed (retryable by hand)."""
    return settings.JOB_MAX_ATTEMPTS


class BackgroundJob(models.Model):
    """Status, attempts, error, timestamps and the heartbeat of one job run by a Celery worker."""

    task_name: str = ""
    task_id_kwarg: str = "job_id"

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker started it.")
    max_attempts = models.PositiveIntegerField(
        default=default_max_attempts,
        help_text="Starts allowed before a stopped or failing job stays failed; a retry by hand allows as many again.",
    )
    error = models.TextField(blank=True, help_text=f"Why it failed (at most {ERROR_MAX_CHARS} characters).")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Last sign of life: when it was queued, started, or last reported running by its worker.",
    )
    worker = models.CharField(max_length=120, blank=True, help_text="host:pid of the process that last started it.")

    class Meta:
        abstract = True

    @property
    def finished(self) -> bool:
        return self.status == JobStatus.DONE
