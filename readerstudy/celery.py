"""The Celery application: queue "default" for ingestion and exports, queue "gpu" for enhancement."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readerstudy.settings")

app = Celery("readerstudy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.conf.task_default_queue = "default"
app.conf.task_routes = {"worker.enhancement.*": {"queue": "gpu"}}
# A task is acknowledged only when it finished, so a worker that dies mid-task leaves it to be re-delivered.
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
app.conf.worker_prefetch_multiplier = 1
app.conf.task_ignore_result = True
app.conf.broker_connection_retry_on_startup = True
app.conf.imports = (
    "worker.ingestion", "worker.enhancement", "worker.exports", "worker.power", "worker.recovery",
)


@app.on_after_configure.connect
def ensure_embedded_broker_folders(sender: Celery, **_: object) -> None:
    """The file-system transport needs its folders to exist before the first message."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)
