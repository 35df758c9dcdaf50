"""Safety QA of an enhanced series: statistics of the residual (conventional minus enhanced).

Removing noise leaves a residual that looks like noise: zero mean, white, unrelated to anatomy. Removed or
invented structure leaves a residual with spatial structure: its energy survives smoothing (removed blobs,
intensity drifts), or it follows the edges of the image (blurred-away or invented detail). ``structure_score``
is the larger of the share of residual energy that survives a Gaussian low-pass beyond what white noise would
keep, and the absolute correlation of the residual with the high-pass (edges) of the enhanced image: 0 for
white noise, 1 for a residual that is all structure. A residual far weaker than the conventional image's own noise
means the DL version is (nearly) its input: no comparison to read. ``failures`` names each failed check and
``flagged`` marks the series for a human look; it is not read until someone accepts it.
"""

from __future__ import annotations

import io
import logging
import math
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage

logger = logging.getLogger(__name__)

STRUCTURE_SIGMA = 2.0
STRUCTURE_THRESHOLD = 0.3
BIAS_THRESHOLD = 0.02
# A residual SD under this share of the conventional image's noise SD is "no change" (denoising at factor 16
# removes most of the noise, so its residual SD is close to the noise SD).
NO_CHANGE_THRESHOLD = 0.1
# Noise SD floor as a share of the mean signal, so a noise-free input does not make any change look large.
_NOISE_FLOOR = 1e-3
NO_CHANGE, STRUCTURED, BIAS = "no_change", "structured_residual", "intensity_bias"
FAILURE_MESSAGES = {
    NO_CHANGE: "No change: the DL series is (nearly) identical to its input, so there is nothing to compare.",
    STRUCTURED: "Too much change: the residual has structure (anatomy removed, blurred or invented).",
    BIAS: "Too much change: the mean intensity moved (residual mean beyond 2 % of the signal).",
}
# Immerkaer's Laplacian-difference kernel: zero response to planes and to linear ramps, so it sees noise.
_NOISE_KERNEL = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
# Variance kept by a 2D Gaussian low-pass of sigma s on white noise: 1 / (4 pi s^2).
_WHITE_KEPT = 1.0 / (4.0 * math.pi * STRUCTURE_SIGMA**2)


class ResidualStats(NamedTuple):
    """Residual statistics inside the signal mask (intensities in the series' own units)."""

    mean: float
    sd: float
    relative_mean: float
    structure_score: float
    lowpass_share: float
    edge_correlation: float
    spectral_flatness: float
    noise_sd: float
    relative_sd: float
    failures: tuple[str, ...]
    flagged: bool

    def as_dict(self) -> dict[str, float | bool | list[str]]:
        """JSON-ready, as stored on the job."""
        return {**self._asdict(), "failures": list(self.failures)}


def signal_mask(volume: np.ndarray) -> np.ndarray:
    """Voxels with signal (above 10 % of the 99th percentile), where residuals are meaningful."""
    return volume > 0.1 * np.percentile(volume, 99.0)


def noise_sd(volume: np.ndarray, mask: np.ndarray) -> float:
    """Noise SD of ``(Z, Y, X)`` inside ``mask`` from the in-plane Laplacian difference (Immerkaer 1996).

    The median of its magnitude rather than the mean, so edges count less; fine anatomy still adds a little, which
    only makes the "no change" check more lenient.
    """
    response = np.stack([ndimage.convolve(plane, _NOISE_KERNEL, mode="nearest") for plane in volume])
    inner = mask & ndimage.binary_erosion(mask, np.ones((1, 3, 3), bool))
    values = np.abs(response[inner if inner.any() else mask])
    # White noise of SD s gives a response of SD 6 s (the kernel's L2 norm); median |N(0, 1)| = 0.6745.
    return float(np.median(values) / (0.6745 * 6.0)) if values.size else 0.0


def _spectral_flatness(residual: np.ndarray) -> float:
    """Geometric over arithmetic mean of the in-plane power spectrum, averaged over slices (white ~ 0.56)."""
    power = np.abs(np.fft.rfft2(residual - residual.mean(axis=(-2, -1), keepdims=True))) ** 2 + 1e-12
    ratio = np.exp(np.mean(np.log(power), axis=(-2, -1))) / np.mean(power, axis=(-2, -1))
    return float(np.mean(ratio))


def residual_stats(
    conventional: np.ndarray, enhanced: np.ndarray, mask: np.ndarray | None = None
) -> ResidualStats:
    """Statistics of ``conventional - enhanced`` for two volumes ``(Z, Y, X)`` (or slices ``(Y, X)``)."""
    if conventional.shape != enhanced.shape:
        raise ValueError(f"shapes differ: {conventional.shape} vs {enhanced.shape}")
    if conventional.ndim not in (2, 3):
        raise ValueError(f"expected (Z, Y, X) or (Y, X), got {conventional.shape}")
    conv = conventional.astype(np.float64).reshape((-1, *conventional.shape[-2:]))
    enh = enhanced.astype(np.float64).reshape(conv.shape)
    mask = (
        signal_mask(conv) if mask is None else np.broadcast_to(mask, conventional.shape).reshape(conv.shape)
    )
    if not mask.any():
        mask = np.ones(conv.shape, bool)
    residual = conv - enh
    inside = residual[mask]
    mean, sd = float(inside.mean()), float(inside.std())
    reference = float(np.abs(conv[mask]).mean()) or 1.0
    noise = max(noise_sd(conv, mask), _NOISE_FLOOR * reference)
    if sd <= 1e-9 * reference:  # a constant residual (to rounding): the input itself, or it shifted
        failure = BIAS if abs(mean / reference) > BIAS_THRESHOLD else NO_CHANGE
        stats = ResidualStats(mean, 0.0, mean / reference, 0.0, 0.0, 0.0, 1.0, noise, 0.0, (failure,), True)
        logger.debug("residual stats %s", stats)
        return stats
    smooth = ndimage.gaussian_filter(residual, (0, STRUCTURE_SIGMA, STRUCTURE_SIGMA))
    kept = float(np.var(smooth[mask]) / np.var(inside))
    lowpass = float(np.clip((kept - _WHITE_KEPT) / (1.0 - _WHITE_KEPT), 0.0, 1.0))
    edges = enh - ndimage.gaussian_filter(enh, (0, STRUCTURE_SIGMA, STRUCTURE_SIGMA))
    edge_correlation = float(np.corrcoef(inside, edges[mask])[0, 1]) if edges[mask].std() > 0 else 0.0
    structure = max(lowpass, abs(edge_correlation))
    checks = {
        NO_CHANGE: sd < NO_CHANGE_THRESHOLD * noise,
        STRUCTURED: structure > STRUCTURE_THRESHOLD,
        BIAS: abs(mean / reference) > BIAS_THRESHOLD,
    }
    failures = tuple(name for name, failed in checks.items() if failed)
    stats = ResidualStats(
        mean=mean,
        sd=sd,
        relative_mean=mean / reference,
        structure_score=structure,
        lowpass_share=lowpass,
        edge_correlation=edge_correlation,
        spectral_flatness=_spectral_flatness(residual),
        noise_sd=noise,
        relative_sd=sd / noise,
        failures=failures,
        flagged=bool(failures),
    )
    logger.debug("residual stats %s", stats)
    return stats


def difference_png(
    conventional: np.ndarray, enhanced: np.ndarray, slice_index: int | None = None, window_sd: float = 3.0
) -> bytes:
    """PNG (8-bit grey) of the residual of one slice, mid-grey = 0, +-``window_sd`` residual SDs to black/white.

    ``slice_index`` defaults to the slice with the most residual energy, where a coordinator should look.
    """
    if conventional.shape != enhanced.shape:
        raise ValueError(f"shapes differ: {conventional.shape} vs {enhanced.shape}")
    residual = conventional.astype(np.float32) - enhanced.astype(np.float32)
    if residual.ndim == 3:
        if slice_index is None:
            slice_index = int(np.argmax((residual**2).sum(axis=(1, 2))))
        residual = residual[slice_index]
    elif residual.ndim != 2:
        raise ValueError(f"expected (Z, Y, X) or (Y, X), got {residual.shape}")
    spread = float(residual.std()) * window_sd or 1.0
    grey = np.clip(127.5 + 127.5 * residual / spread, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    return buffer.getvalue()
