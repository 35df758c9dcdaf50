"""k-space degradation for training pairs, after fastMRI's ``subsample.py`` and ``transforms.py``.

A clean magnitude image is taken to k-space (orthonormal 2D FFT per slice, so noise of standard deviation
``sigma`` in k-space is ``sigma`` in the image), complex Gaussian noise is added, a sampling mask zeroes the
lines or regions a shorter scan would not acquire, and the zero-filled magnitude image is the degraded input.

Masks are ``(Y, X)`` boolean arrays: the phase-encode direction is ``Y`` (rows), read-out is ``X``.
Every mask instance owns its random generator and seed, so the same shape and call seed always give the same
mask; bad arguments raise ``ValueError``.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

logger = logging.getLogger(__name__)


class MaskFunc:
    """Base class: validates the shape, picks the generator, and lets each pattern build its mask."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def __call__(self, shape: tuple[int, int], seed: int | None = None) -> np.ndarray:
        """Boolean mask of ``shape`` ``(Y, X)``; with ``seed`` the mask depends on (instance seed, seed) only."""
        if len(shape) != 2 or min(shape) < 2:
            raise ValueError(f"mask shape must be (Y, X) with both >= 2, got {shape!r}")
        rng = self.rng if seed is None else np.random.default_rng([self.seed or 0, seed])
        mask = self.sample_mask((int(shape[0]), int(shape[1])), rng)
        return mask.astype(bool)

    def sample_mask(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "rng")
        return f"{type(self).__name__}({args})"


def _centre_lines(ny: int, center_fraction: float) -> np.ndarray:
    """Boolean vector of the fully sampled central phase-encode lines."""
    lines = np.zeros(ny, dtype=bool)
    n_centre = max(1, round(ny * center_fraction))
    start = (ny - n_centre + 1) // 2
    lines[start : start + n_centre] = True
    return lines


def _check_acceleration(acceleration: float, center_fraction: float) -> None:
    if not acceleration >= 1.0:
        raise ValueError(f"acceleration must be >= 1, got {acceleration!r}")
    if not 0.0 < center_fraction <= 1.0:
        raise ValueError(f"center_fraction must be in (0, 1], got {center_fraction!r}")


class UniformMask(MaskFunc):
    """Every ``acceleration``-th phase-encode line from a random offset, plus a fully sampled centre."""

    def __init__(self, acceleration: int, center_fraction: float, seed: int | None = None) -> None:
        if int(acceleration) != acceleration:
            raise ValueError(f"uniform acceleration must be an integer, got {acceleration!r}")
        _check_acceleration(acceleration, center_fraction)
        super().__init__(seed)
        self.acceleration = int(acceleration)
        self.center_fraction = center_fraction

    def sample_mask(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        ny, nx = shape
        lines = _centre_lines(ny, self.center_fraction)
        offset = int(rng.integers(self.acceleration))
        lines[offset :: self.acceleration] = True
        return np.repeat(lines[:, None], nx, axis=1)


class RandomMask(MaskFunc):
    """Phase-encode lines drawn at random so that on average ``1/acceleration`` are kept, plus the centre."""

    def __init__(self, acceleration: float, center_fraction: float, seed: int | None = None) -> None:
        _check_acceleration(acceleration, center_fraction)
        super().__init__(seed)
        self.acceleration = float(acceleration)
        self.center_fraction = center_fraction

    def sample_mask(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        ny, nx = shape
        lines = _centre_lines(ny, self.center_fraction)
        n_centre = int(lines.sum())
        prob = max(0.0, (ny / self.acceleration - n_centre) / max(ny - n_centre, 1))
        lines |= rng.uniform(size=ny) < prob
        return np.repeat(lines[:, None], nx, axis=1)


class KmaxMask(MaskFunc):
    """Truncation of the outer k-space (lower acquired resolution): keeps the central ``fraction`` per axis."""

    def __init__(self, fraction_y: float, fraction_x: float = 1.0, seed: int | None = None) -> None:
        for name, value in (("fraction_y", fraction_y), ("fraction_x", fraction_x)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        super().__init__(seed)
        self.fraction_y = fraction_y
        self.fraction_x = fraction_x

    def sample_mask(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        ny, nx = shape
        return _centre_lines(ny, self.fraction_y)[:, None] & _centre_lines(nx, self.fraction_x)[None, :]


class PartialFourierMask(MaskFunc):
    """Asymmetric phase-encode coverage: ``fraction`` (0.5..1) of the lines, the missing side drawn at random."""

    def __init__(self, fraction: float, seed: int | None = None) -> None:
        if not 0.5 <= fraction <= 1.0:
            raise ValueError(f"partial Fourier fraction must be in [0.5, 1], got {fraction!r}")
        super().__init__(seed)
        self.fraction = fraction

    def sample_mask(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        ny, nx = shape
        n_keep = max(ny // 2 + 1, round(ny * self.fraction))
        lines = np.zeros(ny, dtype=bool)
        if rng.uniform() < 0.5:
            lines[:n_keep] = True
        else:
            lines[ny - n_keep :] = True
        return np.repeat(lines[:, None], nx, axis=1)


class EllipticalMask(MaskFunc):
    """Elliptical scanning: only k-space inside an ellipse of relative ``radius`` (1 = inscribed) is kept."""

    def __init__(self, radius: float = 1.0, seed: int | None = None) -> None:
        if not 0.0 < radius <= 2.0:
            raise ValueError(f"radius must be in (0, 2], got {radius!r}")
        super().__init__(seed)
        self.radius = radius

    def sample_mask(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        ny, nx = shape
        ky = (np.arange(ny) - ny // 2) / (ny / 2)
        kx = (np.arange(nx) - nx // 2) / (nx / 2)
        return ky[:, None] ** 2 + kx[None, :] ** 2 <= self.radius**2


class Degraded(NamedTuple):
    """A training sample: the degraded and clean magnitude images ``(..., Y, X)`` and what was done."""

    degraded: np.ndarray
    clean: np.ndarray
    noise_sigma: float
    mask: np.ndarray


def fft2c(image: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2D FFT over the last two axes."""
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def ifft2c(kspace: np.ndarray) -> np.ndarray:
    """Centred orthonormal inverse 2D FFT over the last two axes."""
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def add_complex_noise(kspace: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """k-space plus circular complex Gaussian noise of standard deviation ``sigma`` per real/imaginary part."""
    if sigma < 0:
        raise ValueError(f"noise sigma must be >= 0, got {sigma!r}")
    if sigma == 0:
        return kspace
    noise = rng.normal(scale=sigma, size=kspace.shape) + 1j * rng.normal(scale=sigma, size=kspace.shape)
    return kspace + noise


def apply_mask(kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Zero the k-space samples a mask ``(Y, X)`` does not acquire (broadcast over leading axes)."""
    if mask.shape != kspace.shape[-2:]:
        raise ValueError(f"mask shape {mask.shape} does not match k-space {kspace.shape[-2:]}")
    return kspace * mask


def degrade(
    image: np.ndarray, mask: MaskFunc | np.ndarray | None, noise_sigma: float, seed: int
) -> np.ndarray:
    """Degraded magnitude image (float32, same shape as ``image``, ``(Y, X)`` or ``(Z, Y, X)``).

    ``mask`` is a :class:`MaskFunc` (called with ``seed``), a boolean ``(Y, X)`` array, or ``None`` for full
    sampling. The same mask applies to every slice, as in a 2D multi-slice acquisition.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (Y, X) or (Z, Y, X), got shape {image.shape}")
    rng = np.random.default_rng(seed)
    if isinstance(mask, MaskFunc):
        mask = mask(image.shape[-2:], seed=seed)
    kspace = add_complex_noise(fft2c(image.astype(np.float64)), noise_sigma, rng)
    if mask is not None:
        kspace = apply_mask(kspace, np.asarray(mask, dtype=bool))
    return np.abs(ifft2c(kspace)).astype(np.float32)


MASK_KINDS = ("none", "uniform", "random", "kmax", "partial_fourier", "elliptical")


def random_mask(rng: np.random.Generator) -> MaskFunc | None:
    """A mildly accelerating mask of a random kind, as drawn per training pair (``None``: full sampling)."""
    kind = MASK_KINDS[int(rng.integers(len(MASK_KINDS)))]
    seed = int(rng.integers(2**31))
    if kind == "uniform":
        return UniformMask(2, float(rng.uniform(0.2, 0.4)), seed=seed)
    if kind == "random":
        return RandomMask(float(rng.uniform(1.2, 1.8)), float(rng.uniform(0.15, 0.35)), seed=seed)
    if kind == "kmax":
        return KmaxMask(float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.7, 1.0)), seed=seed)
    if kind == "partial_fourier":
        return PartialFourierMask(float(rng.uniform(0.6, 0.9)), seed=seed)
    if kind == "elliptical":
        return EllipticalMask(float(rng.uniform(0.9, 1.2)), seed=seed)
    return None
