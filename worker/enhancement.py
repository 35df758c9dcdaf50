"""Enhancement tasks (queue "gpu"): thin doors onto apps.imaging.services.enhancement_runner."""

from celery import current_app, shared_task
from celery.signals import worker_process_init

from apps.imaging.services import enhancement
from worker.failures import run_and_record


@shared_task(bind=True, max_retries=3, acks_late=True)
def enhance_series(self, *, job_id: int) -> None:
    """Produces the DL version of one series; safe to run twice."""
    # Imported here so that web processes, which only queue this task, never load torch.
    from apps.imaging.services import enhancement_runner

    run_and_record(
        self,
        lambda: enhancement_runner.run_job(job_id),
        lambda exc: enhancement.mark_failed(job_id, f"{type(exc).__name__}: {exc}"),
        f"Enhancement job {job_id}",
    )


@worker_process_init.connect
def warm_up_enhancement_model(**_: object) -> None:
    """A pool process of a worker that consumes the "gpu" queue loads and runs the model before its first job."""
    queues = current_app.amqp.queues
    if "gpu" not in (queues.consume_from or queues):  # no -Q option: the worker consumes every queue
        return
    from apps.imaging.services import enhancement_runner

    enhancement_runner.warm_up_model()
