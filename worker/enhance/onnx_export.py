"""``python -m worker.enhance.onnx_export OUT.onnx [--model VERSION] [--weights FILE]``.

Exports the built-in CE U-Net to ONNX under its input contract (``contract.BUILT_IN_CONTRACT``): inputs
``image (N, 3, H, W)`` and ``context (N, 10)``, output ``estimate (N, 1, H, W)``, ``N, H, W`` dynamic (``H, W``
multiples of 16). Run through ``onnx_runner.OnnxRunner`` it gives the torch engine's result to float rounding;
it is the worked example of registering a model of one's own, and the benchmark's ONNX twin of the torch model.
Uses torch's TorchScript-based exporter, which needs only the ``onnx`` package (no network, no onnxscript).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from .context import CONTEXT_DIM
from .contract import BUILT_IN_CONTRACT, InputContract
from .inference import load_model
from .model import ContextUNet
from .shipped import MODEL_VERSION, shipped_versions, weights_path

OPSET = 17


class CleanEstimate(nn.Module):
    """``(image (N, S, H, W), context (N, D)) -> (N, 1, H, W)``: the CE U-Net's full-strength estimate of the
    clean centre slice (centre + correction), for ``H, W`` already padded to multiples of ``2**num_pool_layers``."""

    def __init__(self, model: ContextUNet) -> None:
        super().__init__()
        self.model = model
        self.centre = model.in_chans // 2

    def forward(self, image: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return image[:, self.centre : self.centre + 1] + self.model.padded_correction(image, context)


def export_model(model: ContextUNet, path: str | Path, opset: int = OPSET) -> InputContract:
    """Writes ``model`` (float32, on the CPU) to ``path`` as ONNX; returns the contract to register it with."""
    wrapper = CleanEstimate(model.float().cpu().eval())
    multiple = 2**model.num_pool_layers
    example = (torch.zeros(1, model.in_chans, 4 * multiple, 4 * multiple), torch.zeros(1, CONTEXT_DIM))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice and tracer notes
        torch.onnx.export(
            wrapper,
            example,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["image", "context"],
            output_names=["estimate"],
            dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "context": {0: "n"}, "estimate": {0: "n", 2: "h", 3: "w"}},
        )
    return BUILT_IN_CONTRACT._replace(slices=model.in_chans, pad_multiple=multiple)


def export_builtin(path: str | Path, version: str = MODEL_VERSION, weights: str | Path | None = None) -> InputContract:
    """Exports a shipped model version (or a weights file) to ``path``; returns its contract."""
    loaded = load_model(str(weights or weights_path(version)), "cpu")
    return export_model(loaded.model, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.enhance.onnx_export", description=__doc__.splitlines()[2])
    parser.add_argument("output", type=Path, help="the .onnx file to write")
    parser.add_argument("--model", choices=shipped_versions(), default=MODEL_VERSION, help="shipped model version")
    parser.add_argument("--weights", type=Path, default=None, help="a weights file instead of a shipped model")
    args = parser.parse_args(argv)
    contract = export_builtin(args.output, args.model, args.weights)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, sha256 {digest})")
    print("register it with: " + " ".join(f"{key}={value}" for key, value in contract.as_dict().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
