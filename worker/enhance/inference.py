"""Slice-wise inference of an enhancement model on a whole volume, in the volume's own intensity scale.

The model is the built-in CE U-Net (``TorchRunner``) or a registered ONNX file (``onnx_runner.OnnxRunner``);
both run through the ``Runner`` interface and their input contract (``contract.py``), so everything else here
is the same for every model. The volume is divided by a robust scale (its 99th percentile; or not, as the
contract says), enhanced slice by slice with the neighbouring
slices as channels, and multiplied back, so there is no global bias and the output has the input's shape.
On CUDA: bf16 autocast, the whole series in one batch where it fits, channels-last; ``warm_up`` pays the
first-call costs (cuDNN autotuning, lazy initialisation) when a worker starts, not on the first series.
Large matrices are processed in overlapping tiles.

The output is a plausible magnitude image: never negative (the estimate is made non-negative before the
input's noise is partly kept, instead of clipping the output, which piled 16-27 % of DL pixels up at exactly
0), and where there is no signal it keeps a noise floor of at
least ``FLOOR_QUANTA`` steps of the stored values, so that a quantised DL image has no more exact zeros than
its input (a background SD of 0 would make the paper's SNR infinite and tell a script which version it sees).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch

from .context import CONTEXT_DIM, DEFAULT_FACTOR, check_factor, context_from_params, params_from_dataset
from .contract import BUILT_IN_CONTRACT, InputContract
from .model import ContextUNet
from .phantom import AcquisitionParams
from .shipped import MODEL_VERSION as MODEL_VERSION
from .shipped import WEIGHTS_DIR as WEIGHTS_DIR
from .shipped import shipped_versions as shipped_versions
from .shipped import weights_path

logger = logging.getLogger(__name__)

TILE_OVERLAP = 32
DEFAULT_TILE = BUILT_IN_CONTRACT.max_matrix
# Slices per CUDA batch (the last batch of a series is padded to it) and the most pixels in one batch.
CUDA_BATCH = 16
CUDA_BATCH_PIXELS = 16 * 768 * 768
# Noise floor kept where there is no signal, in steps of the stored values (Rayleigh scale 4 steps: 0.8 % of
# background pixels round to 0).
FLOOR_QUANTA = 4.0


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


def _sample(values: np.ndarray, most: int = 1 << 20) -> np.ndarray:
    """At most about ``most`` evenly strided values: robust statistics of a large volume at a fraction of the cost."""
    flat = values.ravel()
    return flat[:: max(1, flat.size // most)]


def normalisation_scale(volume: np.ndarray) -> float:
    """Robust intensity scale of a magnitude volume: its 99th percentile (never 0). Same as in training."""
    return float(max(np.percentile(_sample(volume), 99.0), 1e-6))


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


class Runner(Protocol):
    """One way to run any enhancement model: the built-in CE U-Net (``TorchRunner``) or a registered ONNX file
    (``onnx_runner.OnnxRunner``). ``enhance_volume`` does everything around it (normalisation, neighbouring
    slices, tiling, the factor and the noise floor) the same way for every model, following ``contract``.
    """

    contract: InputContract
    device: torch.device
    runtime: str  # what ran it, for the job's provenance, e.g. "torch 2.13.0"

    def correction(self, image: torch.Tensor, context: np.ndarray) -> torch.Tensor:
        """Full correction (estimate minus input centre slice) for ``image (N, S, H, W)`` -> ``(N, H, W)``, on
        ``device``, in the normalised units of ``image``; ``context`` is the ``(CONTEXT_DIM,)`` vector."""
        ...


class TorchRunner:
    """The shipped CE U-Net in torch: bf16 autocast and channels-last on CUDA, float32 on the CPU."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.device = loaded.device
        self.contract = BUILT_IN_CONTRACT._replace(
            slices=loaded.model.in_chans, pad_multiple=2**loaded.model.num_pool_layers
        )
        self.runtime = f"torch {torch.__version__}" + (" (bf16 autocast)" if self.device.type == "cuda" else "")

    def correction(self, image: torch.Tensor, context: np.ndarray) -> torch.Tensor:
        ctx = torch.from_numpy(np.repeat(context[None], len(image), axis=0)).to(self.device)
        if self.device.type == "cuda":
            image = image.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = self.loaded.model.correction(image, ctx)
        else:
            out = self.loaded.model.correction(image, ctx)
        return out[:, 0].float()


def torch_runner(weights: str | Path | None = None, device: str | None = None) -> TorchRunner:
    """The built-in model (shipped weights, or a weights file) on ``device``; loaded once per process."""
    return TorchRunner(load_model(str(weights) if weights else None, device))


def warm_up(
    weights: str | Path | None = None,
    device: str | None = None,
    matrices=((512, 512), (256, 256)),
    *,
    runner: Runner | None = None,
) -> float:
    """Load the model and run it once per typical matrix, so that the first series pays no start-up cost.

    Returns the seconds spent. Called when an enhancement worker starts (``worker.enhancement``).
    """
    started = time.perf_counter()
    runner = runner or torch_runner(weights, device)
    if runner.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    for ny, nx in matrices:
        volume = np.random.default_rng(0).rayleigh(
            10.0, size=(_batch_slices(runner.device, ny, nx, CUDA_BATCH), ny, nx)
        )
        enhance_volume(
            volume.astype(np.float32), np.zeros(CONTEXT_DIM, np.float32), DEFAULT_FACTOR, runner=runner
        )
    if runner.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    logger.info("warmed %s on %s in %.1f s", runner.runtime, runner.device, seconds)
    return seconds


def _batch_slices(device: torch.device, ny: int, nx: int, nz: int) -> int:
    """Slices per batch: a fixed ``CUDA_BATCH`` on CUDA (fewer only for very large matrices), 4 on the CPU.

    Fixed, so that every series of a matrix runs the shapes that ``warm_up`` tuned (cuDNN picks its kernels
    per shape; a new slice count would pay the tuning again on the first series that has it).
    """
    if device.type != "cuda":
        return min(4, nz)
    return max(1, min(CUDA_BATCH, CUDA_BATCH_PIXELS // (ny * nx)))


def _sample_t(values: torch.Tensor, most: int = 1 << 20) -> torch.Tensor:
    """Torch twin of ``_sample``: at most about ``most`` evenly strided values."""
    flat = values.reshape(-1)
    return flat[:: max(1, flat.numel() // most)]


def noise_sd(residual: torch.Tensor, mask: torch.Tensor) -> float:
    """Robust noise SD (MAD) of the removed part of the image inside the signal mask."""
    values = _sample_t(residual[mask] if bool(mask.any()) else residual)
    return float(1.4826 * (values - values.median()).abs().median())


# Median of a Rayleigh distribution over its scale: sqrt(2 ln 2).
_RAYLEIGH_MEDIAN = 1.1774
# Fewest background pixels from which the background noise is estimated.
_MIN_BACKGROUND = 1000


def background_noise(volume: torch.Tensor, estimate: torch.Tensor, level: torch.Tensor) -> float | None:
    """Noise scale of the input where the model sees no signal (air, nulled CSF): there a magnitude image is
    Rayleigh-distributed, whose median is 1.1774 x its scale. None when the field of view has too little of it.

    Measured on the input itself because the residual in tissue also holds whatever structure the model
    smoothed (on a 1.8 mm phantom it overstated the noise twice, and the floor came out too thin).
    """
    dark = estimate < 0.05 * level
    if int(dark.sum()) < _MIN_BACKGROUND:
        return None
    return float(_sample_t(volume[dark]).median()) / _RAYLEIGH_MEDIAN


def magnitude_with_floor(
    full: torch.Tensor, volume: torch.Tensor, factor: float, quantum: float
) -> torch.Tensor:
    """The enhanced magnitude image from the model's full-strength estimate ``full`` and the input ``volume``.

    ``estimate + kept * (volume - estimate)`` with the estimate made non-negative (a magnitude): in tissue
    ``kept = 1 / factor`` (the factor's definition); where there is no signal, ``kept`` rises smoothly so that
    the noise left has a Rayleigh scale of at least ``FLOOR_QUANTA`` stored steps (never more than the input's
    own). A convex mix of two non-negative images is never negative, so nothing is clipped. Runs on the
    tensors' device (on a GPU this post-processing took 0.21 s of 0.37 s per 30 x 512^2 series in numpy).
    """
    estimate = full.clamp(min=0.0)
    residual = volume - estimate
    level = torch.quantile(_sample_t(estimate), 0.99).clamp(min=1e-6)
    sigma = background_noise(volume, estimate, level) or noise_sd(residual, estimate > 0.1 * level)
    kept = torch.full_like(full, 1.0 / factor)
    if sigma > 0:
        floor = min(1.0, max(1.0 / factor, FLOOR_QUANTA * quantum / sigma))
        background = (1.0 - estimate / (3.0 * sigma)).clamp(0.0, 1.0)
        kept += (floor - 1.0 / factor) * background
    return estimate + kept * residual


def _quantum(context) -> float:
    """Step of the stored values (RescaleSlope) when the context is a DICOM dataset, else 1."""
    if hasattr(context, "get") and hasattr(context, "dir"):
        slope = context.get("RescaleSlope")
        if slope not in (None, "") and float(slope) > 0:
            return float(slope)
    return 1.0


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
    quantum: float | None = None,
    runner: Runner | None = None,
) -> np.ndarray:
    """Enhanced copy of ``volume`` ``(Z, Y, X)`` (or ``(Y, X)``) in the same units, shape and dtype float32.

    ``context``: ``AcquisitionParams``, a pydicom ``Dataset`` of the series, or a context vector.
    ``factor``: noise-reduction factor in ``[1, 100]``; 1 returns the input unchanged.
    ``runner``: the model to run (default: the built-in CE U-Net from ``weights`` on ``device``), following
    its input contract (neighbouring slices, normalisation, largest matrix).
    ``tile``: maximum in-plane tile size (default the contract's ``max_matrix``, 768 for the built-in model:
    clinical matrices run whole; larger ones are tiled with a 32-pixel overlap to bound memory).
    ``quantum``: step of the stored values (default the dataset's RescaleSlope, else 1), which sets the noise
    floor kept where there is no signal.
    """
    factor = check_factor(factor)
    data = np.asarray(volume, dtype=np.float32)
    if data.ndim == 2:
        return enhance_volume(
            data[None],
            context,
            factor,
            device,
            weights=weights,
            batch_size=batch_size,
            tile=tile,
            quantum=quantum,
            runner=runner,
        )[0]
    if data.ndim != 3 or min(data.shape) < 1:
        raise ValueError(f"volume must be (Z, Y, X) or (Y, X), got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("volume contains NaN or infinite values")
    if factor == 1.0:
        return data.copy()
    runner = runner or torch_runner(weights, device)
    target = runner.device
    tile = tile or runner.contract.max_matrix
    nz, ny, nx = data.shape
    batch_size = batch_size or _batch_slices(target, min(ny, tile), min(nx, tile), nz)
    vector = build_context(context, (ny, nx), factor)
    scale = normalisation_scale(data) if runner.contract.normalisation == "p99" else 1.0
    source = torch.from_numpy(data).to(target)
    normalised = source / scale
    half = runner.contract.slices // 2
    offsets = torch.arange(-half, half + 1, device=target)
    correction = torch.empty_like(source)
    for y0, y1, wy0, wy1 in _tiles(ny, tile):
        for x0, x1, wx0, wx1 in _tiles(nx, tile):
            for z0 in range(0, nz, batch_size):
                indices = torch.arange(z0, min(z0 + batch_size, nz), device=target)
                if target.type == "cuda" and len(indices) < batch_size:
                    indices = torch.cat([indices, indices[-1:].expand(batch_size - len(indices))])
                neighbours = (indices[:, None] + offsets[None, :]).clamp(0, nz - 1)
                stack = normalised[neighbours, y0:y1, x0:x1]
                predicted = runner.correction(stack, vector)
                correction[indices, wy0:wy1, wx0:wx1] = predicted[:, wy0 - y0 : wy1 - y0, wx0 - x0 : wx1 - x0]
    full = source + correction * scale
    quantum = quantum if quantum is not None else _quantum(context)
    return magnitude_with_floor(full, source, factor, quantum).cpu().numpy()
