"""A worker killed mid-job (SIGKILL of the Celery main process and its pool process), on the embedded file-system
broker and on Redis: the next worker's stale-job sweep finds the job without a heartbeat, queues it again and it
finishes; a job past its attempt limit stays failed, says why, and is retried from its page."""

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from django.urls import reverse

from apps.imaging.models import BatchOutcome, EnhancementJob, Instance, Series, UploadBatch, Version
from apps.imaging.services import enhancement, uploads
from apps.institutions.services import add_site
from apps.jobs.models import JobStatus
from tests.factories import CoordinatorFactory
from tests.imaging.dicom_samples import write_patient_study
from tests.imaging.test_worker import redis_url, start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Beats every second, stale after four silent seconds, swept every second: recovery within seconds, not minutes.
FAST_RECOVERY = {
    "READERSTUDY_JOB_HEARTBEAT_SECONDS": "1", "READERSTUDY_JOB_STALE_SECONDS": "4",
    "READERSTUDY_JOB_SWEEP_SECONDS": "1", "READERSTUDY_ENHANCE_DEVICE": "cpu", "READERSTUDY_ENHANCE_WARMUP": "0",
    "OMP_NUM_THREADS": "1",
}
REDIS_KEYS = ("default", "gpu", "unacked", "unacked_index", "unacked_mutex")


def use_broker(app, url: str, options: dict) -> None:
    """Points this test process's producer at the worker's broker (the app caches its connection pools)."""
    app.conf.broker_url, app.conf.broker_transport_options = url, options
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(params=["embedded", "redis"])
def broker(request, tmp_path, eager_tasks, settings) -> dict[str, str]:
    """The environment of a worker on the broker this test's process now sends to."""
    app = eager_tasks
    app.conf.task_always_eager = False
    previous = app.conf.broker_url, app.conf.broker_transport_options
    if request.param == "redis":
        url = redis_url()
        redis.Redis.from_url(url).delete(*REDIS_KEYS)  # nothing left from an earlier run
        options, env = {"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT}, {"REDIS_URL": url}
    else:
        var = tmp_path / "var"
        url, env = "filesystem://", {"REDIS_URL": "", "READERSTUDY_VAR_DIR": str(var)}
        options = {"data_folder_in": str(var / "celery-broker" / "queue"),
                   "data_folder_out": str(var / "celery-broker" / "queue"),
                   "control_folder": str(var / "celery-broker" / "control"), "store_processed": False}
        for folder in ("queue", "control"):
            (var / "celery-broker" / folder).mkdir(parents=True)
    use_broker(app, url, options)
    yield {**FAST_RECOVERY, **env}
    use_broker(app, *previous)
    if request.param == "redis":
        redis.Redis.from_url(url).delete(*REDIS_KEYS)


class Workers:
    """Starts workers on the test's broker and kills them as a crash would; every worker is gone at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, []

    def start(self):
        log = self.logs / f"worker{len(self.started) + 1}.log"
        worker = start_worker(self.env, pool="prefork", queues="default,gpu", log=log)
        self.started.append((worker, log))
        return worker

    def kill(self, worker) -> list[int]:
        """SIGKILL the main process and every process under it at once: nothing gets to clean up."""
        pids = [worker.pid, *descendants(worker.pid)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
        return pids

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in self.started)

    def stop_all(self) -> None:
        for worker, _ in self.started:
            if worker.poll() is None:
                self.kill(worker)


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


@pytest.fixture
def workers(broker, tmp_path):
    pool = Workers(broker, tmp_path)
    yield pool
    pool.stop_all()


def wait_for(condition: Callable[[], bool], workers: Workers, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} not within {seconds} s\n{workers.output()}")


def status_of(job) -> str:
    job.refresh_from_db()
    return job.status


@pytest.fixture
def site():
    return add_site("east", "East Hospital")


@pytest.fixture
def staged(tmp_path, site) -> UploadBatch:
    """One series of a synthetic study (its T2W folder), staged as an upload."""
    folder, _ = write_patient_study(tmp_path / "incoming", seed=11)
    return uploads.stage_path(site, None, folder / "01")


def kill_mid_job(job, workers: Workers) -> None:
    """Waits until a worker runs the job, then kills that worker with the job unfinished."""
    worker = workers.start()
    wait_for(lambda: status_of(job) == JobStatus.RUNNING, workers, 120, "the first worker starting the job")
    killed = workers.kill(worker)
    assert len(killed) >= 2, "the main process and its pool process"
    assert status_of(job) == JobStatus.RUNNING and job.attempts == 1, "killed mid-job, nothing recorded it"


def test_an_upload_whose_worker_is_killed_is_processed_again(staged, workers):
    uploads.enqueue_processing(staged)
    kill_mid_job(staged, workers)

    workers.start()
    wait_for(lambda: status_of(staged) in (JobStatus.DONE, JobStatus.FAILED), workers, 120, "the upload finishing")
    assert staged.state == BatchOutcome.DONE, staged.error
    assert staged.attempts == 2
    assert staged.accepted_count == staged.file_count == Instance.objects.count()
    assert Series.objects.filter(version=Version.CONVENTIONAL).count() == 1, "stored once"
    assert not uploads.staging_dir(staged).exists(), "no staged file left once it finished"


def test_an_enhancement_whose_worker_is_killed_runs_again(staged, workers, monkeypatch):
    from apps.imaging.services import ingest

    queued = []
    monkeypatch.setattr(enhancement, "enqueue", queued.append)
    ingest.process_batch(staged.pk)  # here, so that only the enhancement runs on the worker
    monkeypatch.undo()
    job = EnhancementJob.objects.get()
    enhancement.enqueue(job)
    kill_mid_job(job, workers)

    workers.start()
    wait_for(lambda: status_of(job) in (JobStatus.DONE, JobStatus.FAILED), workers, 150, "the enhancement finishing")
    assert job.status == JobStatus.DONE, job.error
    assert job.attempts == 2 and job.output_series is not None
    assert job.output_series.instances.count() == job.series.instances.count()
    assert EnhancementJob.objects.filter(pk=job.pk, output_series__version=Version.DL).count() == 1


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_a_killed_job_past_its_limit_is_failed_and_retried_from_its_page(staged, workers, client, site):
    UploadBatch.objects.filter(pk=staged.pk).update(max_attempts=1)
    uploads.enqueue_processing(staged)
    kill_mid_job(staged, workers)

    workers.start()
    wait_for(lambda: status_of(staged) == JobStatus.FAILED, workers, 60, "the sweep failing the stopped upload")
    assert "stopped" in staged.error and "after 1 of 1 attempts" in staged.error
    client.force_login(CoordinatorFactory(institution=site))
    page = client.get(reverse("imaging:upload_detail", args=[staged.pk])).content.decode()
    assert "Failed" in page and "no heartbeat since" in page and "Process again" in page

    response = client.post(reverse("imaging:upload_retry", args=[staged.pk]))
    assert response.status_code == 302
    wait_for(lambda: status_of(staged) in (JobStatus.DONE, JobStatus.FAILED), workers, 120, "the retried upload")
    assert staged.state == BatchOutcome.DONE and staged.attempts == 2 and staged.error == ""
    assert staged.accepted_count == staged.file_count
