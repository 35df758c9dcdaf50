"""Tiny torch networks exported to ONNX in the test run, one per behaviour a registration must accept or refuse."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn
from torch.nn import functional as F


class BoxDenoiser(nn.Module):
    """A real if crude denoiser: the 3x3 mean of the centre slice (edges averaged over the pixels inside)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        centre = image[:, image.shape[1] // 2 :][:, :1]
        return F.avg_pool2d(centre, 3, stride=1, padding=1, count_include_pad=False)


class ReturnsInput(nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image[:, 1:2] * 1.0


class WrongShape(nn.Module):
    """All the slices back instead of the enhanced centre one."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image * 0.9


class NonFinite(nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        centre = image[:, 1:2]
        return centre + torch.log(centre - centre - 1.0)  # log(-1): NaN everywhere


def onnx_bytes(module: nn.Module, slices: int = 3, dynamic: bool = True) -> bytes:
    """``module`` exported with torch's TorchScript-based exporter: ``image (N, slices, H, W)`` -> ``estimate``."""
    buffer = io.BytesIO()
    axes = {"image": {0: "n", 2: "h", 3: "w"}, "estimate": {0: "n", 2: "h", 3: "w"}} if dynamic else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, slices, 32, 32),), buffer, dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["estimate"], dynamic_axes=axes)
    return buffer.getvalue()


class MemoryHungry(nn.Module):
    """A box filter that first copies its input 20 000 times (gigabytes per tile): a model that allocates without
    bound."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        copies = image[:, 1:2].repeat(1, 20000, 1, 1)
        return F.avg_pool2d(copies.mean(dim=1, keepdim=True), 3, stride=1, padding=1, count_include_pad=False)
