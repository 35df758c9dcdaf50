"""The enhancement model is loaded and run when a "gpu" worker process starts, not on the first series."""

import pytest
from kombu import Queue

from apps.imaging.services import enhancement_runner
from worker import enhancement
from worker.enhance import inference


def test_auto_warms_up_only_where_cuda_is(settings, monkeypatch):
    settings.ENHANCE_WARMUP = "auto"
    settings.ENHANCE_DEVICE = ""
    monkeypatch.setattr(inference.torch.cuda, "is_available", lambda: False)
    assert enhancement_runner.warm_up_model() is None
    settings.ENHANCE_WARMUP = "0"
    assert enhancement_runner.warm_up_model() is None


def test_warm_up_loads_and_runs_the_deployment_model(settings):
    settings.ENHANCE_WARMUP = "1"
    settings.ENHANCE_DEVICE = "cpu"
    settings.ENHANCE_MODEL = ""
    inference.load_model.cache_clear()
    seconds = enhancement_runner.warm_up_model()
    assert seconds is not None and seconds > 0
    _, weights = enhancement_runner.deployment_model()
    assert inference.load_model.cache_info().currsize == 1
    assert inference.load_model(str(weights), "cpu").version == inference.MODEL_VERSION


@pytest.mark.parametrize(
    ("consumed", "warmed"), [(["gpu"], True), (["default", "gpu"], True), (["default"], False)]
)
def test_only_workers_of_the_gpu_queue_warm_up(monkeypatch, consumed, warmed):
    calls = []
    monkeypatch.setattr(enhancement_runner, "warm_up_model", lambda: calls.append(1))
    queues = enhancement.current_app.amqp.queues
    monkeypatch.setattr(queues, "_consume_from", {name: Queue(name) for name in consumed})  # as -Q sets it
    enhancement.warm_up_enhancement_model()
    assert bool(calls) is warmed
