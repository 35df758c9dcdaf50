"""The stale-job sweep, run by every worker: once when it is ready and then every JOB_SWEEP_SECONDS, from a thread
of the worker's main process, so no extra process (beat) is needed and a restarted worker recovers the jobs its
killed predecessor was running. Sweeps of several workers are safe together: each job is claimed by one update."""

import logging
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connections

from apps.jobs import lifecycle

logger = logging.getLogger(__name__)

_stop = threading.Event()


def sweep_once() -> list[str]:
    try:
        return lifecycle.recover_stale_jobs()
    except Exception:  # the database may be restarting: the next sweep tries again
        logger.warning("Stale-job sweep failed", exc_info=True)
        return []
    finally:
        connections.close_all()  # this thread's connections: none is left for a forked pool process to inherit


def _sweep_forever() -> None:
    while True:
        sweep_once()
        if _stop.wait(settings.JOB_SWEEP_SECONDS):
            return


@worker_ready.connect
def start_sweeping(**_: object) -> None:
    _stop.clear()
    threading.Thread(target=_sweep_forever, name="stale-job-sweep", daemon=True).start()


@worker_shutdown.connect
def stop_sweeping(**_: object) -> None:
    _stop.set()
