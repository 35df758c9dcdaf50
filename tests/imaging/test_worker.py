"""A real Celery worker process, on a real Redis and on the embedded file-system broker, ingests an upload."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from kombu import Connection

from apps.imaging.models import BatchOutcome, UploadBatch
from apps.imaging.services import uploads
from apps.institutions.services import add_site
from apps.jobs.models import JobStatus
from tests.imaging.dicom_samples import write_patient_study
from worker.ingestion import process_upload_batch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def redis_url() -> str:
    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {url}: {exc} (scripts/test.sh expects it; .ci/run starts it)")
    return url


def start_worker(env_overrides: dict[str, str], pool: str = "solo", queues: str = "default",
                 log: Path | None = None) -> subprocess.Popen:
    """A real Celery worker process on this test's database, image store and staging folder; its output goes to
    ``log`` (a file, which never fills up and blocks the worker) or to a pipe."""
    env = {**os.environ, **env_overrides, "DATABASE_URL": database_url(), "READERSTUDY_ALLOW_INSECURE_KEY": "1",
           "READERSTUDY_MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
           "READERSTUDY_UPLOAD_STAGING_DIR": str(django_settings.UPLOAD_STAGING_DIR)}
    env.pop("READERSTUDY_CELERY_EAGER", None)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "readerstudy", "worker", "-Q", queues, "--pool", pool,
         "--concurrency", "1", "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=REPO, env=env, stdout=log.open("w") if log else subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_until_finished(batch: UploadBatch, worker: subprocess.Popen, seconds: float = 120) -> UploadBatch:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch.refresh_from_db()
        if batch.status in (JobStatus.DONE, JobStatus.FAILED):
            return batch
        if worker.poll() is not None:
            break
        time.sleep(0.5)
    worker.terminate()
    pytest.fail(f"worker did not finish the batch (status {batch.status}):\n{worker.communicate()[0][-4000:]}")


@pytest.mark.parametrize("broker", ["redis", "embedded"])
def test_real_worker_ingests_an_upload(tmp_path, eager_tasks, broker):
    eager_tasks.conf.task_always_eager = False
    site = add_site("east", "East Hospital")
    folder, _ = write_patient_study(tmp_path / "incoming", seed=11)
    batch = uploads.stage_path(site, None, folder)

    if broker == "redis":
        url = redis_url()
        env = {"REDIS_URL": url}
    else:
        var_dir = tmp_path / "var"
        url = "filesystem://"
        env = {"REDIS_URL": "", "READERSTUDY_VAR_DIR": str(var_dir)}
    worker = start_worker(env)
    try:
        if broker == "redis":
            with Connection(url) as conn:
                process_upload_batch.apply_async(kwargs={"batch_id": batch.pk}, connection=conn, queue="default")
        else:
            queue = var_dir / "celery-broker" / "queue"
            queue.mkdir(parents=True, exist_ok=True)
            options = {"data_folder_in": str(queue), "data_folder_out": str(queue), "store_processed": False,
                       "control_folder": str(var_dir / "celery-broker" / "control")}
            with Connection(url, transport_options=options) as conn:
                process_upload_batch.apply_async(kwargs={"batch_id": batch.pk}, connection=conn, queue="default")
        batch = wait_until_finished(batch, worker)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert batch.state == BatchOutcome.DONE
    assert batch.accepted_count == batch.file_count
    assert batch.attempts == 1
