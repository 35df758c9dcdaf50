"""Running a registered model on the worker: the only part of the registry that imports torch and onnxruntime.

Every model, built in or registered, becomes an ``inference.Runner``, so ``inference.enhance_volume`` runs all of
them the same way. Web processes never import this module.
"""

from __future__ import annotations

import threading

from apps.enhancement_models import services
from apps.enhancement_models.models import EnhancementModel, Runtime
from worker.enhance import inference, shipped
from worker.enhance.onnx_runner import OnnxRunner

_sessions: dict[tuple[str, str | None], OnnxRunner] = {}
_lock = threading.Lock()
_MAX_SESSIONS = 4


def runner_for(model: EnhancementModel, device: str | None = None) -> inference.Runner:
    """The model ready to run on ``device`` (None: CUDA where available, else the CPU), its file checked against
    the registered sha256 (``services.ModelIntegrityError`` otherwise); loaded once per process."""
    if model.runtime == Runtime.TORCH:
        runner = inference.torch_runner(shipped.weights_path(model.version), device)
        if runner.loaded.sha256 != model.sha256:
            raise services.ModelIntegrityError(
                f"The shipped weights of {model} do not have its registered sha256; they are not run."
            )
        return runner
    key = (model.sha256, device)
    with _lock:
        runner = _sessions.get(key)
        if runner is None:
            runner = OnnxRunner(services.model_bytes(model), model.contract, device)
            if len(_sessions) >= _MAX_SESSIONS:
                _sessions.pop(next(iter(_sessions)))
            _sessions[key] = runner
    return runner
