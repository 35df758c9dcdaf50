"""Enhancement tasks (queue "gpu"): thin doors onto apps.imaging.services.enhancement_runner."""

from celery import current_app, shared_task
from celery.signals import worker_process_init

from apps.imaging.models import EnhancementJob
from apps.jobs import lifecycle


@shared_task(acks_late=True)
def enhance_series(*, job_id: int) -> None:
    """Produces the DL version of one series; safe to run twice."""
    # Imported here so that a process that only imports this module never loads torch before a job runs.
    from apps.imaging.services import enhancement_runner

    lifecycle.run_task(
        EnhancementJob, job_id, lambda: enhancement_runner.run_job(job_id), lambda exc: f"{type(exc).__name__}: {exc}"
    )


@worker_process_init.connect
def warm_up_enhancement_model(**_: object) -> None:
    """A pool process of a worker that consumes the "gpu" queue loads and runs the model before its first job."""
    queues = current_app.amqp.queues
    if "gpu" not in (queues.consume_from or queues):  # no -Q option: the worker consumes every queue
        return
    from apps.imaging.services import enhancement_runner

    enhancement_runner.warm_up_model()
