"""The enhancement model is loaded and run when a "gpu" worker process starts, not on the first series."""

import os
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.django_db  # the deployment's model is a registry row
def test_warm_up_loads_and_runs_the_deployment_model(settings):
    settings.ENHANCE_WARMUP = "1"
    settings.ENHANCE_DEVICE = "cpu"
    settings.ENHANCE_MODEL = ""
    inference.load_model.cache_clear()
    seconds = enhancement_runner.warm_up_model()
    assert seconds is not None and seconds > 0
    weights = inference.weights_path(inference.MODEL_VERSION)
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


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("READERSTUDY_ENHANCE_WARMUP", "sometimes", "must be auto, 1 or 0"),
        ("READERSTUDY_ENHANCE_FACTOR", "sixteen", "READERSTUDY_ENHANCE_FACTOR"),
        ("READERSTUDY_ENHANCE_FACTOR", "0.5", "must be in [1.0, 100.0]"),
        ("READERSTUDY_ENHANCE_FACTOR", "nan", "must be in [1.0, 100.0]"),
    ],
)
def test_a_bad_enhancement_setting_stops_start_up_with_a_clear_message(variable, value, message):
    """Settings are read at start-up: a wrong value must stop the process with its name, not fail a job later."""
    env = {**os.environ, "READERSTUDY_DEBUG": "1", variable: value}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**env, "DJANGO_SETTINGS_MODULE": "readerstudy.settings"},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
