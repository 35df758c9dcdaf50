"""Slice-wise inference of the CE U-Net on a whole volume, in the volume's own intensity scale.

The volume is divided by a robust scale (its 99th percentile), enhanced slice by slice with the neighbouring
slices as channels, and multiplied back, so there is no global bias and the output has the input's shape.
On CUDA: mixed precision, batched slices, channels-last. Large matrices are processed in overlapping tiles.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .context import CONTEXT_DIM, DEFAULT_FACTOR, check_factor, context_from_params, params_from_dataset
from .model import ContextUNet
from .phantom import AcquisitionParams

logger = logging.getLogger(__name__)

MODEL_VERSION = "ceunet-c16-v2"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
TILE_OVERLAP = 32
DEFAULT_TILE = 768


class LoadedModel(NamedTuple):
    """A network ready for inference and where it came from (the version goes to the database)."""

    model: ContextUNet
    version: str
    sha256: str
    device: torch.device


def select_device(device: str | None = None) -> torch.device:
    """``None``: CUDA when available, else CPU. Asking for CUDA without one raises ``RuntimeError``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA device is available")
    return chosen


def shipped_versions() -> list[str]:
    """Model versions whose weights ship in ``weights/``, sorted by name; ``MODEL_VERSION`` is the default."""
    return sorted(path.stem for path in WEIGHTS_DIR.glob("*.pt"))


def weights_path(version: str = MODEL_VERSION) -> Path:
    """Path of the shipped weights of ``version``; ``ValueError`` for a version that does not ship."""
    versions = shipped_versions()
    if version not in versions:
        raise ValueError(f"unknown model version {version!r}; shipped: {', '.join(versions)}")
    return WEIGHTS_DIR / f"{version}.pt"


@functools.lru_cache(maxsize=4)
def load_model(path: str | Path | None = None, device: str | None = None) -> LoadedModel:
    """Load weights (half precision on disk) as float32 on ``device``; cached per (path, device)."""
    path = Path(path) if path else weights_path()
    target = select_device(device)
    raw = path.read_bytes()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    with torch.random.fork_rng(devices=[]):
        model = ContextUNet(**checkpoint["config"])
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()}
    )
    model.eval().to(target)
    if target.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    logger.info("loaded %s (%s) on %s", checkpoint["version"], path.name, target)
    return LoadedModel(model, checkpoint["version"], hashlib.sha256(raw).hexdigest(), target)


def normalisation_scale(volume: np.ndarray) -> float:
    """Robust intensity scale of a magnitude volume: its 99th percentile (never 0). Same as in training."""
    return float(max(np.percentile(volume, 99.0), 1e-6))


def build_context(context, matrix: tuple[int, int], factor: float) -> np.ndarray:
    """Context vector from ``AcquisitionParams``, a pydicom ``Dataset``, or an existing vector."""
    if isinstance(context, AcquisitionParams):
        return context_from_params(context, matrix, factor)
    if isinstance(context, np.ndarray):
        if context.shape != (CONTEXT_DIM,):
            raise ValueError(f"context vector must have shape ({CONTEXT_DIM},), got {context.shape}")
        return context.astype(np.float32)
    if hasattr(context, "dir") and hasattr(context, "get"):
        params, _ = params_from_dataset(context)
        return context_from_params(params, matrix, factor)
    raise TypeError(f"context must be AcquisitionParams, a pydicom Dataset or a vector, not {type(context)}")


def _tiles(length: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(read start, read stop, write start, write stop) along one axis for overlapping tiles."""
    if length <= tile:
        return [(0, length, 0, length)]
    step = tile - 2 * TILE_OVERLAP
    spans = []
    for start in range(0, length, step):
        stop = min(start + step, length)
        read0, read1 = max(start - TILE_OVERLAP, 0), min(stop + TILE_OVERLAP, length)
        spans.append((read0, read1, start, stop))
    return spans


def _run(loaded: LoadedModel, stack: np.ndarray, context: np.ndarray, strength: float) -> np.ndarray:
    """Model on a batch ``(N, S, H, W)`` of normalised slices -> ``(N, H, W)``."""
    device = loaded.device
    image = torch.from_numpy(stack).to(device)
    ctx = torch.from_numpy(np.repeat(context[None], len(stack), axis=0)).to(device)
    strengths = torch.full((len(stack),), strength, device=device)
    if device.type == "cuda":
        image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16):
            out = loaded.model(image, ctx, strengths)
    else:
        out = loaded.model(image, ctx, strengths)
    return out[:, 0].float().cpu().numpy()


@torch.inference_mode()
def enhance_volume(
    volume: np.ndarray,
    context,
    factor: float = DEFAULT_FACTOR,
    device: str | None = None,
    *,
    weights: str | Path | None = None,
    batch_size: int | None = None,
    tile: int | None = None,
) -> np.ndarray:
    """Enhanced copy of ``volume`` ``(Z, Y, X)`` (or ``(Y, X)``) in the same units, shape and dtype float32.

    ``context``: ``AcquisitionParams``, a pydicom ``Dataset`` of the series, or a context vector.
    ``factor``: noise-reduction factor in ``[1, 100]``; 1 returns the input unchanged.
    ``tile``: maximum in-plane tile size (default 768: clinical matrices run whole; larger ones are tiled
    with a 32-pixel overlap to bound memory).
    """
    factor = check_factor(factor)
    data = np.asarray(volume, dtype=np.float32)
    if data.ndim == 2:
        return enhance_volume(
            data[None], context, factor, device, weights=weights, batch_size=batch_size, tile=tile
        )[0]
    if data.ndim != 3 or min(data.shape) < 1:
        raise ValueError(f"volume must be (Z, Y, X) or (Y, X), got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("volume contains NaN or infinite values")
    loaded = load_model(str(weights) if weights else None, device)
    on_cuda = loaded.device.type == "cuda"
    batch_size = batch_size or (16 if on_cuda else 4)
    tile = tile or DEFAULT_TILE
    nz, ny, nx = data.shape
    vector = build_context(context, (ny, nx), factor)
    strength = 1.0 - 1.0 / factor
    scale = normalisation_scale(data)
    normalised = data / scale
    half = loaded.model.in_chans // 2
    output = np.empty_like(normalised)
    for y0, y1, wy0, wy1 in _tiles(ny, tile):
        for x0, x1, wx0, wx1 in _tiles(nx, tile):
            for z0 in range(0, nz, batch_size):
                indices = np.arange(z0, min(z0 + batch_size, nz))
                neighbours = np.clip(indices[:, None] + np.arange(-half, half + 1)[None, :], 0, nz - 1)
                stack = normalised[neighbours, y0:y1, x0:x1]
                enhanced = _run(loaded, np.ascontiguousarray(stack), vector, strength)
                output[indices, wy0:wy1, wx0:wx1] = enhanced[:, wy0 - y0 : wy1 - y0, wx0 - x0 : wx1 - x0]
    return np.maximum(output * scale, 0.0).astype(np.float32)
