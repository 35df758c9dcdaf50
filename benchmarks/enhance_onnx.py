"""The shipped CE U-Net exported to ONNX (onnxruntime) against the same network in torch, on the CPU.

Same process, same inputs, same path: ``inference.enhance_volume`` with the torch runner and with
``onnx_runner.OnnxRunner`` on the exported file (``onnx_export.export_builtin``), each warmed up once, then timed
in turns (A, B, C, A, B, C, ...) so that a busy machine slows every variant alike; medians are printed. "network"
is the time inside the runner (the model itself, plus ONNX's copy to numpy and back), "series" the whole
``enhance_volume`` (normalisation, slice stacks, noise floor: the same code for both). onnxruntime variants:
graph optimisation level and, with more than one thread, whether idle threads spin.

``python -m benchmarks.enhance_onnx [--case 2d|3d] [--slices N] [--threads N] [--repeats N]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from benchmarks.enhance_throughput import CASES, phantom_volume
from benchmarks.machine import describe
from worker.enhance import inference, onnx_export
from worker.enhance.context import DEFAULT_FACTOR
from worker.enhance.onnx_runner import CPU_PROVIDER, OnnxRunner, session_options
from worker.enhance.shipped import MODEL_VERSION, weights_path

LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}


class Timed:
    """A runner that adds up the time spent inside it."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.contract, self.device, self.runtime = runner.contract, runner.device, runner.runtime
        self.seconds = 0.0

    def correction(self, image, context):
        started = time.perf_counter()
        out = self.runner.correction(image, context)
        self.seconds += time.perf_counter() - started
        return out


def onnx_variant(model: bytes, contract, threads: int, level: str, spin: bool) -> OnnxRunner:
    runner = OnnxRunner(model, contract, "cpu", threads=threads)
    options = session_options(threads)
    options.graph_optimization_level = LEVELS[level]
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    runner.session = ort.InferenceSession(model, options, providers=[CPU_PROVIDER])
    runner.runtime = f"onnxruntime {ort.__version__} ({level}{'' if spin else ', no spinning'})"
    return runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="2d")
    parser.add_argument("--slices", type=int, default=8, help="first N slices of the case (default 8)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--levels", default="all,basic,none", help="onnxruntime graph optimisation levels")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    contrast, shape, spacing = CASES[args.case]
    shape = (min(args.slices, shape[0]), *shape[1:])
    volume, params, _ = phantom_volume(contrast, shape, spacing)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ceunet.onnx"
        contract = onnx_export.export_builtin(path)
        model = path.read_bytes()
    runners = {"torch": inference.torch_runner(weights_path(), "cpu")}
    for level in args.levels.split(","):
        runners[f"onnx {level}"] = onnx_variant(model, contract, args.threads, level, spin=True)
        if args.threads > 1:
            runners[f"onnx {level}, no spin"] = onnx_variant(model, contract, args.threads, level, spin=False)

    outputs, series_s, network_s = {}, {name: [] for name in runners}, {name: [] for name in runners}
    for name, runner in runners.items():  # warm-up, and the output each variant gives
        outputs[name] = inference.enhance_volume(volume, params, DEFAULT_FACTOR, runner=runner)
    for _ in range(args.repeats):
        for name, runner in runners.items():
            timed = Timed(runner)
            started = time.perf_counter()
            inference.enhance_volume(volume, params, DEFAULT_FACTOR, runner=timed)
            series_s[name].append(time.perf_counter() - started)
            network_s[name].append(timed.seconds)

    scale = float(np.percentile(volume, 99))
    torch_series, torch_network = statistics.median(series_s["torch"]), statistics.median(network_s["torch"])
    print(f"machine: {describe()}; torch {torch.__version__}, onnxruntime {ort.__version__}; threads {args.threads}")
    print(f"model {MODEL_VERSION}; case {args.case} {contrast} {shape[0]} x {shape[1]} x {shape[2]}; "
          f"factor {DEFAULT_FACTOR:g}; medians of {args.repeats}, taken in turns")
    print("| runtime | network s | series s | slices/s | network time vs torch | largest difference to torch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in runners:
        series, network = statistics.median(series_s[name]), statistics.median(network_s[name])
        difference = float(np.abs(outputs[name] - outputs["torch"]).max())
        print(f"| {runners[name].runtime} | {network:.3f} | {series:.3f} | {shape[0] / series:.2f} "
              f"| {network / torch_network:.2f}x | {difference:.2g} ({difference / scale:.1e} of p99) |")
    print(f"torch series {torch_series:.3f} s")


if __name__ == "__main__":
    main()
