"""The one lifecycle of background jobs: queue on commit, start, heartbeat, finish, fail, retry, recover stale jobs.

Every job model subclasses ``apps.jobs.models.BackgroundJob``; services move their jobs only through this module
and never import a task module (the task is sent by its dotted name, ``Model.task_name``).

Statuses: ``queued`` -> ``running`` -> ``done`` or ``failed``; a failed job (or one whose worker stopped) goes
back to ``queued`` through ``retry``.

API (stable; other job models build on it):

- ``queue(job, countdown=None, note="")``: mark queued and send its task once the transaction commits.
- ``start(model, pk) -> job | None``: claim a queued job (or a running one that is stale, or was last started by
  this very process) for this process (``running``, one more attempt, heartbeat now, ``worker`` = host:pid); None
  when it is done, failed, or running with a fresh heartbeat elsewhere, so a duplicate or late message does
  nothing.
- ``beat(model, pk)``: a heartbeat, per unit of work; ``Heartbeat(model, pk)``: a thread beating every
  ``JOB_HEARTBEAT_SECONDS`` while a task runs (used by ``run_task``).
- ``finish(job, **fields) -> job``: mark done (with the caller's own fields, saved together).
- ``fail(model, pk, message)``: mark failed with a reason truncated to ``ERROR_MAX_CHARS``.
- ``can_retry(job)``, ``retry(job)``: queue a failed or stale job again (``NotRetryable`` otherwise), with as
  many attempts again as a new job; ``prepare_retry(job)``: the same up to marking it queued, without sending,
  for a service that sends through its own function.
- ``stale(model)``: running jobs with no heartbeat for ``JOB_STALE_SECONDS``; ``recover_stale_jobs()``: every
  job model's stale jobs failed with the reason, and re-queued while attempts remain; queued jobs whose message
  may have been lost with a killed worker re-sent after ``JOB_REQUEUE_SECONDS``.
- ``run_task(model, pk, work, public_error)``: the body of a task door: heartbeat thread, transient errors
  re-queued with backoff while attempts remain, any other failure recorded.

Settings (environment): READERSTUDY_JOB_HEARTBEAT_SECONDS (30), READERSTUDY_JOB_STALE_SECONDS (300),
READERSTUDY_JOB_SWEEP_SECONDS (60), READERSTUDY_JOB_REQUEUE_SECONDS (900), READERSTUDY_JOB_MAX_ATTEMPTS (3).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from apps.jobs.models import ERROR_MAX_CHARS, BackgroundJob, JobStatus

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OSError, ConnectionError, TimeoutError)
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class NotRetryable(ValueError):
    """The job is done, or queued or running with a live worker: queuing it again could only duplicate it."""


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def truncated(message: str) -> str:
    return message if len(message) <= ERROR_MAX_CHARS else message[: ERROR_MAX_CHARS - 1] + "…"


def backoff_seconds(attempt: int) -> int:
    """Seconds before a job that met a transient error runs again, after its ``attempt``-th start."""
    return min(300, 5 * 2 ** max(attempt - 1, 0))


def _silent_since(cutoff: datetime) -> Q:
    """No sign of life (heartbeat, else start, else creation) since ``cutoff``; plain columns, so an UPDATE
    checks it on the row it changes."""
    return (
        Q(heartbeat_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, started_at__isnull=True, created_at__lt=cutoff)
    )


def _stale_before(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=settings.JOB_STALE_SECONDS)


def job_models() -> list[type[BackgroundJob]]:
    """Every installed concrete job model."""
    return [m for m in apps.get_models() if issubclass(m, BackgroundJob)]


def _send(model: type[BackgroundJob], pk: int, countdown: float | None) -> None:
    kwargs = {model.task_id_kwarg: pk}
    if current_app.conf.task_always_eager:  # tests and single-process runs: the task runs here, now
        importlib.import_module(model.task_name.rpartition(".")[0])
        current_app.tasks[model.task_name].apply_async(kwargs=kwargs)
    else:
        current_app.send_task(model.task_name, kwargs=kwargs, countdown=countdown)


def queue(job: BackgroundJob, countdown: float | None = None, note: str = "") -> None:
    """Marks the job queued (``note`` says why, e.g. a retry) and sends its task once the row is committed."""
    model, pk = type(job), job.pk
    job.status, job.error, job.finished_at, job.heartbeat_at = JobStatus.QUEUED, truncated(note), None, timezone.now()
    model.objects.filter(pk=pk).update(
        status=job.status, error=job.error, finished_at=None, heartbeat_at=job.heartbeat_at
    )
    transaction.on_commit(lambda: _send(model, pk, countdown))


def start(model: type[BackgroundJob], pk: int) -> BackgroundJob | None:
    """Claims a queued (or stale running) job for this process; None when there is nothing to run here."""
    now = timezone.now()
    claimable = (
        Q(status=JobStatus.QUEUED)
        | Q(status=JobStatus.RUNNING, worker=worker_identity())  # this process ran it before and is free again
        | Q(status=JobStatus.RUNNING) & _silent_since(_stale_before(now))
    )
    claimed = model.objects.filter(claimable, pk=pk).update(
        status=JobStatus.RUNNING, attempts=F("attempts") + 1, started_at=now, heartbeat_at=now,
        finished_at=None, error="", worker=worker_identity(),
    )
    if not claimed:
        logger.info("%s %s: not started here (done, failed, missing, or running elsewhere)", model.__name__, pk)
        return None
    return model.objects.get(pk=pk)


def beat(model: type[BackgroundJob], pk: int) -> bool:
    """Records that this process is still running the job; False when it is no longer this process's job."""
    return bool(model.objects.filter(pk=pk, status=JobStatus.RUNNING, worker=worker_identity()).update(
        heartbeat_at=timezone.now()
    ))


class Heartbeat:
    """A thread that beats for one job every JOB_HEARTBEAT_SECONDS while the block runs (not in eager mode, where
    no separate worker can die)."""

    def __init__(self, model: type[BackgroundJob], pk: int, every: float | None = None) -> None:
        self.model, self.pk = model, pk
        self.every = settings.JOB_HEARTBEAT_SECONDS if every is None else every
        self.identity = worker_identity()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self.every > 0 and not current_app.conf.task_always_eager:
            self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.pk}", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    beat(self.model, self.pk)
                except Exception:  # the database may be restarting: the next beat tries again
                    logger.warning("Heartbeat of %s %s failed", self.model.__name__, self.pk, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def finish(job: BackgroundJob, **fields: object) -> BackgroundJob:
    """Marks the job done, saving ``fields`` (the caller's results) with it."""
    job.status, job.finished_at, job.heartbeat_at = JobStatus.DONE, timezone.now(), timezone.now()
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=["status", "finished_at", "heartbeat_at", *fields])
    return job


def fail(model: type[BackgroundJob], pk: int, message: str) -> None:
    """Records why the job failed, visibly on its page and in the API; it can be retried."""
    model.objects.filter(pk=pk).exclude(status=JobStatus.DONE).update(
        status=JobStatus.FAILED, error=truncated(message), finished_at=timezone.now()
    )


def is_stale(job: BackgroundJob, now: datetime | None = None) -> bool:
    """Queued or running, with no sign of life for JOB_STALE_SECONDS: its worker (or its message) is gone."""
    seen = job.heartbeat_at or job.started_at or job.created_at
    return job.status in ACTIVE and seen is not None and seen < _stale_before(now)


def can_retry(job: BackgroundJob) -> bool:
    return job.status == JobStatus.FAILED or is_stale(job)


def retry(job: BackgroundJob) -> None:
    """Queues a failed or stale job again, with as many attempts again as a new job has."""
    prepare_retry(job)
    queue(job)


def prepare_retry(job: BackgroundJob) -> None:
    """What ``retry`` does before sending, for a service that queues through its own function: refuses a job
    that cannot be retried (``NotRetryable``), allows it as many attempts again as a new job has, and marks it
    queued (the caller sends it)."""
    if not can_retry(job):
        raise NotRetryable(
            "Only a failed job, or one whose worker stopped, can be retried; this one is "
            f"{job.get_status_display().lower()}."
        )
    job.max_attempts = job.attempts + settings.JOB_MAX_ATTEMPTS
    job.status, job.error, job.finished_at, job.heartbeat_at = JobStatus.QUEUED, "", None, timezone.now()
    type(job).objects.filter(pk=job.pk).update(
        max_attempts=job.max_attempts, status=job.status, error="", finished_at=None, heartbeat_at=job.heartbeat_at
    )


def stale(model: type[BackgroundJob], now: datetime | None = None) -> QuerySet:
    """Running jobs of ``model`` whose worker has not beaten for JOB_STALE_SECONDS."""
    return model.objects.filter(_silent_since(_stale_before(now)), status=JobStatus.RUNNING)


def stopped_reason(job: BackgroundJob) -> str:
    seen = job.heartbeat_at or job.started_at or job.created_at
    return (
        f"The worker running it ({job.worker or 'unknown'}) stopped: no heartbeat since "
        f"{timezone.localtime(seen):%Y-%m-%d %H:%M:%S %Z} (limit {settings.JOB_STALE_SECONDS:g} s)"
    )


def recover(job: BackgroundJob, now: datetime | None = None) -> str | None:
    """One stale running job: re-queued while attempts remain, otherwise failed with the reason. None when
    another sweep (or its worker) got there first."""
    reason = stopped_reason(job)
    model = type(job)
    if job.attempts < job.max_attempts:
        note = f"{reason}; queued again automatically (attempt {job.attempts + 1} of {job.max_attempts})."
        if not stale(model, now).filter(pk=job.pk).update(status=JobStatus.QUEUED, heartbeat_at=timezone.now()):
            return None
        queue(job, note=note)
        return note
    message = f"{reason} after {job.attempts} of {job.max_attempts} attempts; it can be retried from its page."
    if not stale(model, now).filter(pk=job.pk).update(
        status=JobStatus.FAILED, error=truncated(message), finished_at=timezone.now()
    ):
        return None
    return message


def recover_stale_jobs(now: datetime | None = None) -> list[str]:
    """The sweep: every stale running job of every job model recovered, and queued jobs that have waited
    JOB_REQUEUE_SECONDS since they were sent sent again (a killed worker may have taken their message with it;
    a duplicate message finds the job claimed and does nothing). Returns what it did, one line per job."""
    done: list[str] = []
    now = now or timezone.now()
    lost_before = now - timedelta(seconds=settings.JOB_REQUEUE_SECONDS)
    for model in job_models():
        for job in stale(model, now):
            outcome = recover(job, now)
            if outcome is not None:
                logger.warning("%s %s: %s", model.__name__, job.pk, outcome)
                done.append(f"{model.__name__} {job.pk}: {outcome}")
        waiting = model.objects.filter(_silent_since(lost_before), status=JobStatus.QUEUED)
        for job in waiting:
            sent = timezone.localtime(job.heartbeat_at or job.created_at)
            queue(job, note=job.error)
            done.append(f"{model.__name__} {job.pk}: queued since {sent:%Y-%m-%d %H:%M:%S %Z}, sent again.")
    return done


def run_task(
    model: type[BackgroundJob], pk: int, work: Callable[[], object], public_error: Callable[[BaseException], str]
) -> None:
    """Runs ``work`` for one job inside a task: a heartbeat thread beats meanwhile; a transient error re-queues
    the job with backoff while attempts remain; any other (or the last) failure is recorded with
    ``public_error(exc)`` and re-raised."""
    with Heartbeat(model, pk):
        try:
            work()
        except TRANSIENT_ERRORS as exc:
            job = model.objects.get(pk=pk)
            if job.status == JobStatus.RUNNING and job.attempts < job.max_attempts:
                wait = backoff_seconds(job.attempts)
                logger.warning("%s %s: transient %s, again in %d s", model.__name__, pk, type(exc).__name__, wait)
                queue(job, countdown=wait, note=f"{public_error(exc)} (transient; trying again in {wait} s)")
                return
            logger.exception("%s %s failed after %d attempts", model.__name__, pk, job.attempts)
            fail(model, pk, public_error(exc))
            raise
        except Exception as exc:
            logger.exception("%s %s failed", model.__name__, pk)
            fail(model, pk, public_error(exc))
            raise
