"""One policy for every task: transient errors are retried with backoff, and the final failure is recorded on
the job's row so that coordinators and admins see it (and can retry) instead of a job stuck as running."""

import logging
from collections.abc import Callable

from celery import Task

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OSError, ConnectionError, TimeoutError)


def backoff_seconds(retries: int) -> int:
    return min(300, 5 * 2**retries)


def run_and_record(task: Task, work: Callable[[], object], record_failure: Callable[[BaseException], None],
                   what: str) -> None:
    """Runs `work` for `task`; the last failure, transient or not, is handed to `record_failure`."""
    try:
        work()
    except TRANSIENT_ERRORS as exc:
        if task.request.retries < task.max_retries:
            logger.warning("%s: transient %s, retry %d", what, type(exc).__name__, task.request.retries + 1)
            raise task.retry(exc=exc, countdown=backoff_seconds(task.request.retries)) from exc
        logger.exception("%s failed after %d retries", what, task.max_retries)
        record_failure(exc)
        raise
    except Exception as exc:
        logger.exception("%s failed", what)
        record_failure(exc)
        raise
