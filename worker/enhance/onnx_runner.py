"""Registered enhancement models as ONNX files, run with onnxruntime through the same ``Runner`` interface as the
built-in CE U-Net (``inference.enhance_volume(..., runner=OnnxRunner(...))``).

A session is made from the model's bytes, never from a path, so a model cannot pull in external data files from
the disk; nothing here unpickles or executes Python from the file. The CUDA execution provider is used where
onnxruntime has it (the ``onnxruntime-gpu`` build) and a CUDA device is present, the CPU provider otherwise.
A model that breaks its contract while running (wrong output shape, NaN or infinite values, an input it cannot
take) raises ``ModelContractError`` with a code and a sentence, so a job fails with a reason a person can read.
"""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import torch

from .context import CONTEXT_DIM
from .contract import InputContract
from .model import pad_to_multiple

logger = logging.getLogger(__name__)

CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"
# Codes of the ways a model breaks its contract (the registration check adds its own: not_onnx, too_slow, ...).
WRONG_INPUTS, WRONG_OUTPUT_SHAPE, NON_FINITE = "wrong_inputs", "wrong_output_shape", "non_finite"


class ModelContractError(ValueError):
    """The model does not do what its input contract says; ``code`` names how (see the codes above)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def providers_for(device: str | None) -> list[str]:
    """Execution providers to ask for: CUDA first where onnxruntime has it and a CUDA device is there (unless
    ``device`` is "cpu"), then the CPU."""
    available = ort.get_available_providers()
    if device != "cpu" and CUDA_PROVIDER in available and torch.cuda.is_available():
        return [CUDA_PROVIDER, CPU_PROVIDER]
    if device == "cuda":
        logger.warning("CUDA asked for, but onnxruntime has no CUDA provider here (%s): running on the CPU",
                       ", ".join(available))
    return [CPU_PROVIDER]


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """All graph optimisations; ``threads`` intra-op threads (default: as many as torch uses in this process, so
    a worker's thread budget holds for both runtimes)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def _dims(value_info) -> list[int | str | None]:
    return list(value_info.shape)


class OnnxRunner:
    """An ONNX model under its input contract, ready to run; see ``inference.Runner``."""

    def __init__(
        self,
        model: bytes,
        contract: InputContract,
        device: str | None = None,
        *,
        threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        self.contract = contract.checked()
        try:
            self.session = ort.InferenceSession(
                model, session_options(threads), providers=providers or providers_for(device)
            )
        except Exception as exc:  # onnxruntime raises its own exception types for a file it cannot load
            raise ModelContractError("not_onnx", f"onnxruntime cannot load the model: {exc}") from exc
        used = self.session.get_providers()
        self.device = torch.device("cuda" if CUDA_PROVIDER in used else "cpu")
        self.runtime = f"onnxruntime {ort.__version__} ({used[0]})"
        self._check_signature()

    def _check_signature(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        wanted = 2 if self.contract.context_input else 1
        described = "image (N, S, H, W)" + (" and context (N, 10)" if self.contract.context_input else "")
        if len(inputs) != wanted:
            names = ", ".join(f"{i.name} {_dims(i)}" for i in inputs)
            raise ModelContractError(
                WRONG_INPUTS, f"the model has {len(inputs)} inputs ({names}); its contract gives it {described}"
            )
        image = inputs[0]
        dims = _dims(image)
        if len(dims) != 4 or (isinstance(dims[1], int) and dims[1] != self.contract.slices):
            raise ModelContractError(
                WRONG_INPUTS,
                f"the model's input {image.name} has shape {dims}; its contract feeds "
                f"(N, {self.contract.slices}, H, W) ({self.contract.slices} neighbouring slices)",
            )
        fixed = [name for name, dim in zip("NHW", (dims[0], dims[2], dims[3]), strict=True) if isinstance(dim, int)]
        if fixed:
            raise ModelContractError(
                WRONG_INPUTS,
                f"the model's input {image.name} has a fixed {', '.join(fixed)} ({dims}); the platform feeds batches "
                "of slices and tiles of varying size, so N, H and W must be dynamic (export with dynamic axes)",
            )
        if image.type != "tensor(float)":
            raise ModelContractError(WRONG_INPUTS, f"the model's input {image.name} is {image.type}, not float32")
        if self.contract.context_input:
            context = inputs[1]
            dims = _dims(context)
            if len(dims) != 2 or (isinstance(dims[1], int) and dims[1] != CONTEXT_DIM):
                raise ModelContractError(
                    WRONG_INPUTS, f"the model's context input {context.name} has shape {dims}, not (N, {CONTEXT_DIM})"
                )
        if not outputs:
            raise ModelContractError(WRONG_OUTPUT_SHAPE, "the model has no output")
        self._inputs = [i.name for i in inputs]
        self._output = outputs[0].name

    def raw(self, image: np.ndarray, context: np.ndarray) -> np.ndarray:
        """The model's own output for ``image (N, S, H, W)`` float32 (``H, W`` multiples of ``pad_multiple``),
        checked: ``(N, 1, H, W)`` and finite."""
        feed = {self._inputs[0]: np.ascontiguousarray(image, dtype=np.float32)}
        if self.contract.context_input:
            feed[self._inputs[1]] = np.repeat(np.asarray(context, np.float32)[None], len(image), axis=0)
        try:
            (out,) = self.session.run([self._output], feed)
        except Exception as exc:  # onnxruntime's Fail / InvalidArgument / RuntimeException
            raise ModelContractError(
                WRONG_INPUTS, f"the model could not run on an input of shape {list(image.shape)}: {exc}"
            ) from exc
        out = np.asarray(out)
        expected = (image.shape[0], 1, *image.shape[2:])
        if out.shape != expected:
            raise ModelContractError(
                WRONG_OUTPUT_SHAPE,
                f"for an input of shape {list(image.shape)} the model returned {list(out.shape)}, "
                f"not {list(expected)} (the enhanced centre slice)",
            )
        if not np.isfinite(out).all():
            raise ModelContractError(NON_FINITE, "the model returned NaN or infinite values")
        return out

    def correction(self, image: torch.Tensor, context: np.ndarray) -> torch.Tensor:
        h, w = image.shape[-2:]
        padded = pad_to_multiple(image, self.contract.pad_multiple)
        estimate = self.raw(padded.float().cpu().numpy(), context)[:, 0, :h, :w]
        centre = image[:, self.contract.slices // 2]
        return torch.from_numpy(estimate).to(image.device) - centre
