"""Trying a model before it is registered: ``python -m worker.enhance.model_check MODEL.onnx --contract JSON``.

The file must be ONNX (parsed with ``onnx``, never unpickled or executed as Python), self-contained (no external
data files), loadable by onnxruntime with the inputs its contract names, and it must enhance a generated phantom
series (``phantom.noisy_series``) through the same ``inference.enhance_volume`` path as the worker, tiled, within
a time limit: right output shape, finite values, and not its input back. Prints one JSON report on stdout: ``ok``,
and when refused a ``code`` and a ``reason`` for a person. The web process runs this in a child process with a
hard timeout, so a hostile or broken file cannot stall or crash it, and web processes never import torch.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from . import qa
from .context import DEFAULT_FACTOR
from .contract import MIN_MATRIX, InputContract
from .inference import enhance_volume
from .onnx_runner import ModelContractError, OnnxRunner
from .phantom import AcquisitionParams, noisy_series

NOT_ONNX, EXTERNAL_DATA, BAD_CONTRACT = "not_onnx", "external_data", "bad_contract"
RETURNS_INPUT, TOO_SLOW, FAILED = "returns_input", "too_slow", "failed"
TOO_MUCH_MEMORY = "too_much_memory"
# What onnxruntime and numpy say when an allocation is refused (by the address-space limit or the machine).
_OUT_OF_MEMORY_WORDS = ("bad_alloc", "failed to allocate", "unable to allocate", "cannot allocate")


class TooSlow(Exception):
    pass


class _Watched:
    """A runner that stops the run once it is over the time limit and keeps the size of what the model changed."""

    def __init__(self, runner: OnnxRunner, limit_s: float) -> None:
        self.runner, self.limit_s = runner, limit_s
        self.contract, self.device, self.runtime = runner.contract, runner.device, runner.runtime
        self.seconds = 0.0
        self.largest_change = 0.0
        self.largest_value = 0.0

    def correction(self, image: torch.Tensor, context: np.ndarray) -> torch.Tensor:
        started = time.perf_counter()
        out = self.runner.correction(image, context)
        self.seconds += time.perf_counter() - started
        if self.seconds > self.limit_s:
            raise TooSlow
        self.largest_change = max(self.largest_change, float(out.abs().max()))
        self.largest_value = max(self.largest_value, float(image.abs().max()))
        return out


def _parse(model: bytes) -> tuple[onnx.ModelProto | None, str, str]:
    """The parsed model, or None with a code and a reason."""
    try:
        proto = onnx.load_model_from_string(model)
    except Exception as exc:  # protobuf's DecodeError and friends
        return None, NOT_ONNX, f"the file is not an ONNX model ({type(exc).__name__})"
    if not proto.graph.node or not proto.graph.input or not proto.graph.output or proto.ir_version < 3:
        return None, NOT_ONNX, "the file is not an ONNX model (no graph with inputs, nodes and outputs)"
    tensors = list(proto.graph.initializer)
    for node in proto.graph.node:
        tensors += [a.t for a in node.attribute if a.HasField("t")]
    if any(t.data_location == onnx.TensorProto.EXTERNAL or t.external_data for t in tensors):
        return None, EXTERNAL_DATA, "the model keeps weights in external data files: upload one self-contained .onnx file"
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx.checker.ValidationError
        return None, NOT_ONNX, f"the file is not a valid ONNX model: {str(exc).splitlines()[0][:300]}"
    return proto, "", ""


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a refused allocation, however the runtime words it."""
    return isinstance(exc, MemoryError) or any(word in str(exc).lower() for word in _OUT_OF_MEMORY_WORDS)


def limit_memory(megabytes: int) -> None:
    """Caps this process's address space, so a model that allocates without bound fails here, not the host."""
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def check_model(
    model: bytes,
    contract: InputContract,
    time_limit_s: float,
    volume: np.ndarray | None = None,
    params: AcquisitionParams | None = None,
    factor: float = DEFAULT_FACTOR,
    threads: int = 1,
) -> dict:
    """Tries ``model`` under ``contract`` on a phantom series; the JSON-ready report (see the module docstring)."""
    report: dict = {"ok": False, "code": "", "reason": "", "time_limit_s": time_limit_s, "factor": factor}

    def refuse(code: str, reason: str) -> dict:
        report.update(code=code, reason=reason)
        return report

    problems = contract.problems()
    if problems:
        return refuse(BAD_CONTRACT, "; ".join(problems))
    proto, code, reason = _parse(model)
    if proto is None:
        return refuse(code, reason)
    report["onnx"] = {
        "ir_version": proto.ir_version,
        "opsets": {entry.domain or "ai.onnx": entry.version for entry in proto.opset_import},
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "inputs": [i.name for i in proto.graph.input],
        "outputs": [o.name for o in proto.graph.output],
    }
    if volume is None:
        volume, params = noisy_series()
    report["phantom_shape"] = list(volume.shape)
    report["tile"] = MIN_MATRIX
    try:
        runner = _Watched(OnnxRunner(model, contract, "cpu", threads=threads), time_limit_s)
        report["runtime"] = runner.runtime
        enhanced = enhance_volume(volume, params, factor, runner=runner, tile=MIN_MATRIX)
    except TooSlow:
        return refuse(TOO_SLOW, f"the model ran over the time limit of {time_limit_s:g} s on the phantom series")
    except Exception as exc:  # whatever onnxruntime or the model does: refused, with what it said
        if out_of_memory(exc):
            return refuse(TOO_MUCH_MEMORY, "the model needed more memory than the limit for a model check "
                          "(READERSTUDY_MODEL_CHECK_MEMORY_MB) on the phantom series")
        if isinstance(exc, ModelContractError):
            return refuse(exc.code, str(exc))
        return refuse(FAILED, f"the model failed on the phantom series: {type(exc).__name__}: {exc}"[:500])
    report["seconds"] = round(runner.seconds, 4)
    if runner.largest_change <= 1e-6 * max(runner.largest_value, 1.0):
        return refuse(RETURNS_INPUT, "the model returned its input unchanged (the centre slice) on the phantom series")
    residual = qa.residual_stats(volume, enhanced)
    report["qa"] = residual.as_dict()
    if qa.NO_CHANGE in residual.failures:
        return refuse(
            RETURNS_INPUT,
            f"the model's output is nearly its input on the phantom series (residual SD {residual.relative_sd:.3f} "
            f"of the noise SD, under {qa.NO_CHANGE_THRESHOLD}): nothing to compare",
        )
    if runner.seconds > time_limit_s:
        return refuse(TOO_SLOW, f"the model ran over the time limit of {time_limit_s:g} s on the phantom series")
    report["ok"] = True
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.enhance.model_check", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the .onnx file")
    parser.add_argument("--contract", default="{}", help="input contract as JSON (contract.InputContract fields)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds the phantom run may take")
    parser.add_argument("--phantom", type=Path, default=None, help=".npz with 'volume' and 'params' (default: made)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory-limit-mb", type=int, default=0,
                        help="address-space limit of this process once its libraries are loaded (0: none)")
    args = parser.parse_args(argv)
    if args.memory_limit_mb > 0:
        limit_memory(args.memory_limit_mb)
    torch.set_num_threads(args.threads)
    contract = InputContract(**json.loads(args.contract))
    volume = params = None
    if args.phantom:
        with np.load(args.phantom) as data:
            volume, params = data["volume"], AcquisitionParams(*data["params"].tolist())
    report = check_model(args.model.read_bytes(), contract, args.time_limit, volume, params, threads=args.threads)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
