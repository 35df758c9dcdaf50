"""Training pairs made on the training device: anatomy rendered once and cached, everything else drawn per pair.

Why: pairs made on CPU cores cannot keep a GPU busy (on an H200 a 64-channel step took 34 ms while one core
needed 265 ms for a batch, and 14 pair-making processes starved the thread that launches the GPU work). Here
the CPU only renders tissue-fraction volumes of the MNI152 phantom once per seed (in parallel processes, cached
on disk as ``anatomy-<seed>.npy``). Per batch the device then

1. warps the anatomy: a random affine map (any rotation, flips, zoom, shear) and a smooth non-linear
   deformation, so the net sees shapes beyond the one template; cuts random thin sulci (CSF along the zero
   lines of a smooth random field) and sharpens tissue borders towards hard labels, because the template's
   probability maps are smoother than an acquired image and a net trained on them alone learns to blur
   (measured on the held-out phantom family: it washed out one-pixel sulci that NLM and BM3D kept);
2. adds a lesion of random shape (thresholded smooth noise in an ellipse) with its own signal;
3. renders a contrast (T2W / FLAIR / T1W post) from acquisition parameters drawn as between sites, each
   tissue's signal jittered, times a fine tissue texture and a smooth coil bias field;
4. adds motion ghosts (phase errors per phase-encode line) and pulsation ghosts (a vessel whose signal varies
   from line to line). They stay in the target: they are image content that readers score, not noise;
5. degrades through k-space: 1-16 receive coils with smooth sensitivities, complex Gaussian noise per coil
   scaled by a spatially varying g-factor map, a sampling mask (``degrade.random_mask``), and the
   root-sum-of-squares magnitude image.

Everything random comes from one ``torch.Generator`` on the device and one ``numpy.random.Generator``
(acquisition parameters and masks); both states go into training checkpoints.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

from .context import context_from_params
from .degrade import random_mask
from .phantom import CONTRASTS, TISSUES, make_tissue_model, random_params, scaled_signals

logger = logging.getLogger(__name__)

FOV_MM = 230.0
MATRICES = (192, 256, 320, 384, 512)
_BRAIN = tuple(TISSUES.index(name) for name in ("gm", "wm", "csf", "oedema", "necrosis", "enhancing"))


class Geometry(NamedTuple):
    """Slices, in-plane matrix and slice spacing (mm) of one cached anatomy."""

    slices: int
    matrix: int
    thickness: float


def geometry_for(seed: int, matrix: int = 256) -> Geometry:
    """2D (30 x 5 mm) for even seeds, 3D (60 x 1 mm) for odd ones, as in clinical glioma protocols."""
    return Geometry(30, matrix, 5.0) if seed % 2 == 0 else Geometry(60, matrix, 1.0)


def render_anatomy(seed: int, matrix: int = 256) -> np.ndarray:
    """Tissue fractions ``(Z, T, H, W)`` float16 of one phantom (T = the tissues of ``phantom.py``)."""
    geometry = geometry_for(seed, matrix)
    lesion = bool(np.random.default_rng([seed, 7]).uniform() < 0.9)
    spacing = (geometry.thickness, FOV_MM / matrix, FOV_MM / matrix)
    model = make_tissue_model((geometry.slices, matrix, matrix), seed=seed, lesion=lesion, spacing=spacing)
    fractions = np.stack([model.fractions()[name] for name in TISSUES], axis=1)
    return fractions.astype(np.float16)


def _cached(args: tuple[int, int, str]) -> str:
    seed, matrix, folder = args
    path = Path(folder) / f"anatomy-{matrix}-{seed}.npy"
    if not path.exists():
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, render_anatomy(seed, matrix))
        tmp.replace(path)
    return str(path)


def cached_anatomies(seeds: list[int], folder: Path, matrix: int = 256, workers: int = 1) -> list[np.ndarray]:
    """Anatomies of ``seeds``, rendered in ``workers`` processes where not cached in ``folder`` yet."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, matrix, str(folder)) for seed in seeds]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            paths = list(pool.map(_cached, jobs))
    else:
        paths = [_cached(job) for job in jobs]
    return [np.load(path) for path in paths]


class AnatomyBank:
    """Cached anatomies on the device, padded to one depth, and the slices worth training on."""

    def __init__(self, anatomies: list[np.ndarray], seeds: list[int], device: torch.device | str) -> None:
        if not anatomies:
            raise ValueError("an anatomy bank needs at least one anatomy")
        depth = max(a.shape[0] for a in anatomies)
        shape = anatomies[0].shape[1:]
        self.device = torch.device(device)
        self.fractions = torch.zeros((len(anatomies), depth, *shape), dtype=torch.float16, device=self.device)
        centres, self.depths, self.thickness = [], [], []
        for i, (volume, seed) in enumerate(zip(anatomies, seeds, strict=True)):
            self.fractions[i, : volume.shape[0]] = torch.from_numpy(volume).to(self.device)
            brain = volume[:, list(_BRAIN)].astype(np.float32).sum(axis=(1, 2, 3))
            centres += [(i, int(z)) for z in np.flatnonzero(brain > 0.3 * brain.max())]
            self.depths.append(volume.shape[0])
            self.thickness.append(geometry_for(seed).thickness)
        self.centres = torch.tensor(centres, dtype=torch.long, device=self.device)
        self.depth_of = torch.tensor(self.depths, dtype=torch.long, device=self.device)

    @property
    def matrix(self) -> int:
        return int(self.fractions.shape[-1])


class Batch(NamedTuple):
    """Normalised network input ``(N, S, P, P)``, clean centre slice ``(N, 1, P, P)`` and context ``(N, D)``."""

    image: torch.Tensor
    target: torch.Tensor
    context: torch.Tensor


def _smooth_noise(n: int, size: int, coarse: int, generator: torch.Generator, device) -> torch.Tensor:
    """Unit-SD smooth random fields ``(n, 1, size, size)`` from a ``coarse`` grid, bicubic upsampled."""
    field = torch.randn((n, 1, coarse, coarse), generator=generator, device=device)
    field = F.interpolate(field, size=(size, size), mode="bicubic", align_corners=False)
    return field / field.flatten(1).std(dim=1).clamp(min=1e-6).view(-1, 1, 1, 1)


def _uniform(shape, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2D FFT over the last two axes (torch twin of ``degrade.fft2c``)."""
    shifted = torch.fft.ifftshift(image, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(shifted, norm="ortho"), dim=(-2, -1))


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal inverse 2D FFT over the last two axes."""
    shifted = torch.fft.ifftshift(kspace, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.ifft2(shifted, norm="ortho"), dim=(-2, -1))


class SynthConfig(NamedTuple):
    """Ranges of the per-pair draws; the defaults are the ones the shipped GPU model was trained with."""

    patch: int = 192
    in_chans: int = 3
    noise: tuple[float, float] = (0.004, 0.12)
    zoom: tuple[float, float] = (0.8, 1.25)
    elastic: float = 0.03
    lesion_probability: float = 0.4
    sulci_probability: float = 0.6
    sharpen_probability: float = 0.6
    texture: float = 0.05
    bias: float = 0.3
    motion_probability: float = 0.15
    pulsation_probability: float = 0.15
    coils: tuple[int, ...] = (1, 1, 1, 4, 8, 16)
    multi_coil_noise: float = 0.04
    g_factor: float = 1.5
    tissue_jitter: float = 0.1


class PairSynthesizer:
    """Makes batches of training pairs from an :class:`AnatomyBank` on its device."""

    def __init__(self, bank: AnatomyBank, cfg: SynthConfig, seed: int) -> None:
        self.bank, self.cfg = bank, cfg
        self.device = bank.device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.rng = np.random.default_rng([seed, 31])

    def state(self) -> dict:
        """Random states for a checkpoint."""
        return {"torch": self.generator.get_state(), "numpy": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.generator.set_state(state["torch"])
        self.rng.bit_generator.state = state["numpy"]

    def _rand(self, shape, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return _uniform(shape, low, high, self.generator, self.device)

    def _anatomy(self, n: int) -> torch.Tensor:
        """Fractions ``(n, S, T, H, W)`` float32 of ``S`` neighbouring slices of randomly drawn brain slices."""
        pick = torch.randint(len(self.bank.centres), (n,), generator=self.generator, device=self.device)
        phantom, centre = self.bank.centres[pick, 0], self.bank.centres[pick, 1]
        half = self.cfg.in_chans // 2
        offsets = torch.arange(-half, half + 1, device=self.device)
        last = (self.bank.depth_of[phantom] - 1)[:, None]
        z = torch.minimum((centre[:, None] + offsets[None]).clamp(min=0), last)
        return self.bank.fractions[phantom[:, None], z].float()

    def _warp(self, x: torch.Tensor) -> torch.Tensor:
        """Random affine map plus smooth deformation, the same for every slice and tissue of a sample."""
        n, s, t, h, w = x.shape
        angle = self._rand((n,), -math.pi, math.pi)
        zoom = torch.exp(self._rand((n,), math.log(self.cfg.zoom[0]), math.log(self.cfg.zoom[1])))
        aspect = torch.exp(self._rand((n,), -0.08, 0.08))
        flip = torch.where(self._rand((n,)) < 0.5, -1.0, 1.0)
        shear = self._rand((n,), -0.08, 0.08)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.zeros((n, 2, 3), device=self.device)
        theta[:, 0, 0] = flip * cos * aspect / zoom
        theta[:, 0, 1] = (-sin + shear) / zoom
        theta[:, 1, 0] = flip * sin / zoom
        theta[:, 1, 1] = cos / (aspect * zoom)
        theta[:, :, 2] = self._rand((n, 2), -0.06, 0.06)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        amplitude = self._rand((n, 1, 1, 1), 0.0, self.cfg.elastic)
        displacement = torch.cat(
            [_smooth_noise(n, h, 6, self.generator, self.device) for _ in range(2)], dim=1
        )
        grid = grid + (amplitude * displacement).permute(0, 2, 3, 1)
        warped = F.grid_sample(x.reshape(n, s * t, h, w), grid, mode="bilinear", align_corners=False)
        return warped.view(n, s, t, h, w)

    def _sulci(self, x: torch.Tensor) -> torch.Tensor:
        """Thin CSF clefts through grey (and some white) matter along zero lines of a smooth random field."""
        n, _, t, h, w = x.shape
        coarse = int(self.rng.choice([12, 16, 24, 32]))
        field = _smooth_noise(n, h, coarse, self.generator, self.device)
        width = self._rand((n, 1, 1, 1), 0.15, 0.5)
        depth = self._rand((n, 1, 1, 1), 0.5, 1.0) * (self._rand((n, 1, 1, 1)) < self.cfg.sulci_probability)
        lines = (depth * torch.exp(-((field / width) ** 2))).unsqueeze(1)  # (n, 1, 1, H, W): through slices
        gm, wm, csf = (TISSUES.index(name) for name in ("gm", "wm", "csf"))
        taken_gm, taken_wm = lines[:, :, 0] * x[:, :, gm], 0.3 * lines[:, :, 0] * x[:, :, wm]
        x = x.clone()
        x[:, :, gm] -= taken_gm
        x[:, :, wm] -= taken_wm
        x[:, :, csf] += taken_gm + taken_wm
        return x

    def _sharpen(self, x: torch.Tensor) -> torch.Tensor:
        """Blend tissue fractions towards hard labels (air included), for borders as sharp as a real image's."""
        air = (1.0 - x.sum(dim=2, keepdim=True)).clamp(min=0.0)
        labels = torch.cat([x, air], dim=2).argmax(dim=2)
        hard = F.one_hot(labels, x.shape[2] + 1)[..., :-1].permute(0, 1, 4, 2, 3).float()
        amount = self._rand((x.shape[0], 1, 1, 1, 1), 0.3, 1.0) * (
            self._rand((x.shape[0], 1, 1, 1, 1)) < self.cfg.sharpen_probability
        )
        return x + amount * (hard - x)

    def _lesion(self, x: torch.Tensor) -> torch.Tensor:
        """A lesion of random shape as an extra tissue ``(n, S, 1, H, W)`` inside the brain; zero where none."""
        n, s, _, h, w = x.shape
        brain = x[:, s // 2, list(_BRAIN)].sum(dim=1)
        weights = brain.flatten(1) + 1e-6
        where = torch.multinomial(weights, 1, generator=self.generator).squeeze(1)
        cy, cx = (where // w).float(), (where % w).float()
        radius = self._rand((n,), 0.02, 0.12) * h
        elong = torch.exp(self._rand((n,), -0.4, 0.4))
        yy = torch.arange(h, device=self.device).view(1, h, 1).float()
        xx = torch.arange(w, device=self.device).view(1, 1, w).float()
        rho = torch.sqrt(
            ((yy - cy.view(-1, 1, 1)) * elong.view(-1, 1, 1)) ** 2
            + ((xx - cx.view(-1, 1, 1)) / elong.view(-1, 1, 1)) ** 2
        ) / radius.view(-1, 1, 1)
        wobble = _smooth_noise(n, h, 8, self.generator, self.device)[:, 0]
        sharpness = self._rand((n, 1, 1), 3.0, 20.0)
        slices = []
        for k in range(s):
            grow = 1.0 - 0.15 * abs(k - s // 2)
            slices.append(torch.sigmoid(sharpness * (grow - rho + 0.35 * wobble)))
        blob = torch.stack(slices, dim=1) * (self._rand((n, 1, 1, 1)) < self.cfg.lesion_probability)
        return (blob * x[:, :, list(_BRAIN)].sum(dim=2)).unsqueeze(2)

    def _signals(self, n: int) -> tuple[torch.Tensor, list]:
        """Signal per tissue and lesion ``(n, T + 1)``, and the acquisition parameters and matrix drawn."""
        rows, params = [], []
        for _ in range(n):
            contrast = CONTRASTS[int(self.rng.integers(len(CONTRASTS)))]
            matrix = int(self.rng.choice(MATRICES))
            thick = (
                bool(self.rng.uniform() < 0.5) if contrast != "T1W_POST" else bool(self.rng.uniform() < 0.2)
            )
            spacing = (5.0 if thick else 1.0, FOV_MM / matrix, FOV_MM / matrix)
            p = random_params(contrast, self.rng, spacing)
            values = scaled_signals(contrast, p)  # type: ignore[arg-type]
            jitter = np.exp(self.rng.normal(0.0, self.cfg.tissue_jitter, size=len(values)))
            lesion = values[TISSUES.index("wm")] * self.rng.uniform(0.3, 1.8)
            rows.append([*(values * jitter), lesion])
            params.append((p, matrix))
        return torch.tensor(rows, dtype=torch.float32, device=self.device), params

    def _ghosts(self, clean: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        """Complex image ``(n, S, H, W)`` with motion and pulsation ghosts along the phase-encode axis (rows)."""
        n, s, h, w = clean.shape
        kspace = fft2c(clean.to(torch.complex64))
        ky = (torch.arange(h, device=self.device).float() - h // 2).view(1, 1, h, 1)
        kx = (torch.arange(w, device=self.device).float() - w // 2).view(1, 1, 1, w)
        moving = (self._rand((n, 1, 1, 1)) < self.cfg.motion_probability).float()
        shift = (
            self._rand((n, 1, 1, 1), 0.2, 1.5)
            * moving
            * torch.sin(
                2 * math.pi * self._rand((n, 1, 1, 1), 0.5, 6.0) * ky / h
                + self._rand((n, 1, 1, 1), 0.0, 2 * math.pi)
            )
        )
        kspace = kspace * torch.exp(-2j * math.pi * kx * shift / w)
        weights = head.flatten(1) + 1e-6
        where = torch.multinomial(weights, 1, generator=self.generator).squeeze(1)
        cy, cx = (where // w).float().view(-1, 1, 1, 1), (where % w).float().view(-1, 1, 1, 1)
        yy = torch.arange(h, device=self.device).float().view(1, 1, h, 1)
        xx = torch.arange(w, device=self.device).float().view(1, 1, 1, w)
        width = self._rand((n, 1, 1, 1), 1.0, 3.0)
        level = clean[:, s // 2].flatten(1).amax(dim=1).view(-1, 1, 1, 1)
        pulsing = (self._rand((n, 1, 1, 1)) < self.cfg.pulsation_probability).float()
        vessel = (
            pulsing
            * level
            * self._rand((n, 1, 1, 1), 0.3, 1.0)
            * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
        )
        period = self._rand((n, 1, 1, 1), 3.0, 12.0)
        modulation = self._rand((n, 1, 1, 1), 0.2, 0.8) * torch.cos(
            2 * math.pi * ky / period + self._rand((n, 1, 1, 1), 0.0, 2 * math.pi)
        )
        kspace = kspace + fft2c(vessel.expand(n, s, h, w).to(torch.complex64)) * (1.0 + modulation)
        return ifft2c(kspace)

    def _coils(self, counts: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Complex sensitivities ``(n, C, 1, H, W)`` whose root-sum-of-squares is 1; unused coils are 0."""
        n = len(counts)
        most = int(counts.max())
        yy = torch.linspace(-1, 1, h, device=self.device).view(1, 1, h, 1)
        xx = torch.linspace(-1, 1, w, device=self.device).view(1, 1, 1, w)
        start = self._rand((n, 1, 1, 1), 0.0, 2 * math.pi)
        angle = start + 2 * math.pi * torch.arange(most, device=self.device).view(1, -1, 1, 1) / counts.view(
            -1, 1, 1, 1
        )
        ring = self._rand((n, 1, 1, 1), 0.6, 1.0)
        spread = self._rand((n, 1, 1, 1), 0.35, 0.8)
        magnitude = torch.exp(
            -((yy - ring * torch.sin(angle)) ** 2 + (xx - ring * torch.cos(angle)) ** 2) / (2 * spread**2)
        )
        used = (torch.arange(most, device=self.device).view(1, -1) < counts.view(-1, 1)).float()
        magnitude = torch.where(counts.view(-1, 1, 1, 1) == 1, torch.ones_like(magnitude), magnitude)
        magnitude = magnitude * used.view(n, most, 1, 1)
        phase = torch.cat([_smooth_noise(n, h, 3, self.generator, self.device) for _ in range(most)], dim=1)
        rss = torch.sqrt((magnitude**2).sum(dim=1, keepdim=True)).clamp(min=1e-6)
        return (magnitude / rss * torch.exp(1j * math.pi * phase)).unsqueeze(2)

    def batch(self, n: int) -> Batch:
        """``n`` pairs, each with its own anatomy draw, contrast, artefacts, noise, coils and mask."""
        cfg = self.cfg
        fractions = self._anatomy(n)
        fractions = self._sharpen(self._sulci(self._warp(fractions)))
        lesion = self._lesion(fractions)
        fractions = torch.cat([fractions * (1.0 - lesion), lesion], dim=2)
        signals, params = self._signals(n)
        clean = torch.einsum("nsthw,nt->nshw", fractions, signals)
        _, s, h, w = clean.shape
        texture = 1.0 + self._rand((n, 1, 1, 1), 0.0, cfg.texture) * _smooth_noise(
            n, h, h // int(self.rng.choice([1, 2, 3])), self.generator, self.device
        )
        bias = torch.exp(
            self._rand((n, 1, 1, 1), 0.0, cfg.bias) * _smooth_noise(n, h, 4, self.generator, self.device)
        )
        clean = clean * texture * bias
        head = fractions[:, s // 2].sum(dim=1)
        ghosted = self._ghosts(clean, head)
        target = ghosted.abs()
        centre = target[:, s // 2].flatten(1)
        scale = torch.quantile(centre, 0.99, dim=1).clamp(min=1e-3)
        counts = torch.tensor(
            [cfg.coils[int(i)] for i in self.rng.integers(len(cfg.coils), size=n)], device=self.device
        )
        level = torch.exp(self._rand((n,), math.log(cfg.noise[0]), math.log(cfg.noise[1])))
        # Root-sum-of-squares lifts low signal by about (2 coils - 1) sigma^2 / (2 signal): cap the noise of
        # many-coil pairs so that this floor stays in the range clinical series show.
        level = torch.where(counts > 1, level.clamp(max=cfg.multi_coil_noise), level) * scale
        coils = self._coils(counts, h, w)
        g_map = 1.0 + self._rand((n, 1, 1, 1), 0.0, cfg.g_factor) * (self._rand((n, 1, 1, 1)) < 0.5) * (
            0.5 + 0.5 * torch.tanh(_smooth_noise(n, h, 3, self.generator, self.device))
        )
        sigma = (level.view(-1, 1, 1, 1) * g_map).unsqueeze(1)
        shape = (n, coils.shape[1], s, h, w)
        noise = torch.complex(
            torch.randn(shape, generator=self.generator, device=self.device),
            torch.randn(shape, generator=self.generator, device=self.device),
        )
        coil_images = coils * ghosted.unsqueeze(1) + sigma * noise
        masks = []
        for _ in range(n):
            mask = random_mask(self.rng)
            masks.append(
                np.ones((h, w), bool) if mask is None else mask((h, w), seed=int(self.rng.integers(2**31)))
            )
        mask = torch.from_numpy(np.stack(masks)).to(self.device).view(n, 1, 1, h, w)
        coil_images = ifft2c(fft2c(coil_images) * mask)
        degraded = torch.sqrt((coil_images.abs() ** 2).sum(dim=1))
        normal = scale * self._rand((n,), 0.8, 1.25)
        degraded, target = degraded / normal.view(-1, 1, 1, 1), target / normal.view(-1, 1, 1, 1)
        p = min(cfg.patch, h)
        y0 = torch.randint(h - p + 1, (n,), generator=self.generator, device=self.device).tolist()
        x0 = torch.randint(w - p + 1, (n,), generator=self.generator, device=self.device).tolist()
        image = torch.stack(
            [degraded[i, :, y : y + p, x : x + p] for i, (y, x) in enumerate(zip(y0, x0, strict=True))]
        )
        clean_patch = torch.stack(
            [
                target[i, s // 2 : s // 2 + 1, y : y + p, x : x + p]
                for i, (y, x) in enumerate(zip(y0, x0, strict=True))
            ]
        )
        factors = np.exp(self.rng.uniform(math.log(2.0), math.log(100.0), size=n))
        context = np.stack(
            [context_from_params(prm, (m, m), float(f)) for (prm, m), f in zip(params, factors, strict=True)]
        )
        return Batch(image.contiguous(), clean_patch.contiguous(), torch.from_numpy(context).to(self.device))
