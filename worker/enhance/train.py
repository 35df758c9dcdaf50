"""Reproducible training of the CE U-Net on phantom pairs degraded through k-space.

``python -m worker.enhance.train --config small|cpu|cpu-continue|cpu-finetune|full --out PATH [--seed N]
[--max-minutes M] [--init WEIGHTS]``

Data: brain phantoms (``phantom.py``) with a glioma drawn per seed, rendered as T2W / FLAIR / T1W post with
acquisition parameters drawn per phantom; each training pair gets its own noise level, sampling pattern,
texture and noise-reduction factor. Validation uses phantom seeds from a disjoint range. Everything random in
the data comes from one ``numpy.random.Generator``; the model initialisation from ``torch.manual_seed``
(or from ``--init`` weights, for fine-tuning).

Continuation configs (``cpu-continue*``) resume from shipped weights (``--init``) on the same data
distribution with a warm restart of the learning rate. Fine-tuning configs (``cpu-finetune``) start from
shipped weights and change three things, each switched off (0) in the other configs so that their random
streams are unchanged: a share of pairs with the noise level drawn from the low range 0.4-2 % only
(``low_noise_fraction``), a share of crops centred on the lesion or its oedema (``lesion_crop``), and a loss
with extra terms (``roi_weight``: L1 weighted up inside lesion and oedema; ``grad_weight``: L1 of the error's
finite differences, which penalises softened edges; ``contrast_weight``: the error of the patch's
lesion-minus-oedema mean difference, i.e. a loss of lesion-to-oedema contrast).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

from . import synth
from .context import CONTEXT_DIM, context_from_params
from .degrade import degrade, random_mask
from .inference import normalisation_scale
from .model import ContextUNet
from .phantom import (
    CONTRASTS,
    AcquisitionParams,
    make_tissue_model,
    random_params,
    render_contrast,
)

logger = logging.getLogger(__name__)

VALIDATION_SEED_OFFSET = 1_000_000
_CROP_MARGIN = 16
BENCHMARK_SEED_OFFSET = 2_000_000


class TrainConfig(NamedTuple):
    """Everything that determines a training run (together with the seed)."""

    name: str
    train_phantoms: int
    val_phantoms: int
    matrices: tuple[int, ...]
    slices_per_phantom: int
    patch: int
    batch: int
    steps: int
    lr: float
    chans: int
    in_chans: int
    num_pool_layers: int
    val_pairs: int
    max_minutes: float
    low_noise_fraction: float = 0.0
    lesion_crop: float = 0.0
    roi_weight: float = 0.0
    grad_weight: float = 0.0
    contrast_weight: float = 0.0
    # "phantom": pairs made on the CPU (make_pair); "synth": made on the training device (synth.py)
    data: str = "phantom"
    coils: tuple[int, ...] = synth.SynthConfig().coils  # synth only: receive-coil counts drawn per pair

    @property
    def uses_labels(self) -> bool:
        """Whether pairs carry the lesion/oedema label map (only the fine-tuning terms need it)."""
        return bool(self.lesion_crop or self.roi_weight or self.contrast_weight)


_CONTINUE = TrainConfig("cpu-continue", 48, 6, (192, 256, 320), 12, 96, 8, 40_000, 4e-4, 16, 3, 4, 96, 65.0)

CONFIGS = {
    "small": TrainConfig("small", 2, 1, (64,), 4, 32, 4, 30, 2e-3, 8, 3, 3, 8, 5.0),
    "cpu": TrainConfig("cpu", 48, 6, (192, 256, 320), 12, 96, 8, 5200, 1e-3, 16, 3, 4, 96, 26.0),
    # From the v1 weights: lower lr, more low-noise pairs, lesion-centred crops, contrast-preserving loss.
    "cpu-finetune": TrainConfig(
        "cpu-finetune",
        48,
        6,
        (192, 256, 320),
        12,
        96,
        8,
        5200,
        2e-4,
        16,
        3,
        4,
        96,
        30.0,
        low_noise_fraction=0.5,
        lesion_crop=0.35,
        roi_weight=3.0,
        grad_weight=0.5,
        contrast_weight=2.0,
    ),
    # Milder variant (second measured attempt): half the lr and of each change, no gradient term.
    "cpu-finetune-mild": TrainConfig(
        "cpu-finetune-mild",
        48,
        6,
        (192, 256, 320),
        12,
        96,
        8,
        2600,
        1e-4,
        16,
        3,
        4,
        96,
        13.0,
        low_noise_fraction=0.25,
        lesion_crop=0.2,
        roi_weight=1.0,
        grad_weight=0.0,
        contrast_weight=1.0,
    ),
    # Continued training from the v1 weights on v1's data distribution: a warm restart at 0.4 x v1's peak lr,
    # run by wall time (the step count is a ceiling). The variants draw the very same pairs and add one loss
    # term each: half of the lesion-minus-oedema contrast term, or half of the edge (finite-difference) term.
    "cpu-continue": _CONTINUE,
    "cpu-continue-contrast": _CONTINUE._replace(name="cpu-continue-contrast", contrast_weight=0.5),
    "cpu-continue-edges": _CONTINUE._replace(name="cpu-continue-edges", max_minutes=46.0, grad_weight=0.5),
    "full": TrainConfig(
        "full", 400, 20, (256, 320, 384, 512), 24, 192, 16, 100_000, 3e-4, 64, 3, 4, 256, 600.0
    ),
    # Pairs synthesised on the device from cached anatomy (synth.py): train_phantoms anatomies of matrix
    # matrices[0]; slices_per_phantom is unused (every brain slice of every anatomy is drawn from).
    "synth-small": TrainConfig("synth-small", 2, 1, (64,), 0, 32, 4, 6, 2e-3, 8, 3, 3, 8, 5.0, data="synth"),
    "gpu-c16": TrainConfig(
        "gpu-c16", 64, 4, (256,), 0, 192, 16, 500_000, 3e-4, 16, 3, 4, 256, 8.0, data="synth"
    ),
    # CPU fine-tune of the GPU-trained c16 on single-coil pairs only (no root-sum-of-squares floor).
    "cpu-synth-c16": TrainConfig(
        "cpu-synth-c16", 16, 2, (256,), 0, 96, 8, 100_000, 1e-4, 16, 3, 4, 64, 35.0, data="synth", coils=(1,)
    ),
    "gpu-c32": TrainConfig(
        "gpu-c32", 64, 4, (256,), 0, 192, 16, 500_000, 5e-4, 32, 3, 4, 256, 8.0, data="synth"
    ),
}


class SliceStack(NamedTuple):
    """Clean neighbouring slices ``(S, H, W)`` of one rendered phantom and how they were acquired."""

    clean: np.ndarray
    params: AcquisitionParams
    contrast: str
    scale: float
    labels: np.ndarray | None = None  # centre slice (H, W) uint8: 0 other, 1 oedema, 2 lesion


class TrainingPair(NamedTuple):
    """Network input ``(S, P, P)``, clean centre slice ``(1, P, P)``, context ``(D,)``, all normalised."""

    image: np.ndarray
    target: np.ndarray
    context: np.ndarray
    labels: np.ndarray | None = None  # (1, P, P) uint8 as in SliceStack


def build_bank(seeds: list[int], cfg: TrainConfig, rng: np.random.Generator) -> list[SliceStack]:
    """Render phantoms (a 2D or 3D geometry drawn per seed) and keep neighbouring-slice stacks of them."""
    bank: list[SliceStack] = []
    half = cfg.in_chans // 2
    for seed in seeds:
        n = int(rng.choice(cfg.matrices))
        thick = bool(rng.uniform() < 0.5)
        nz = max(cfg.in_chans, 30 if thick else 60) if n > 64 else 12
        spacing = (5.0 if thick else 1.0, 230.0 / n, 230.0 / n) if n > 64 else (12.5, 230.0 / n, 230.0 / n)
        model = make_tissue_model((nz, n, n), seed=seed, lesion=bool(rng.uniform() < 0.9), spacing=spacing)
        brain_area = model.brain_mask.sum(axis=(1, 2))
        candidates = np.flatnonzero(brain_area > 0.3 * brain_area.max())
        lesion_slices = np.flatnonzero(model.lesion_mask.sum(axis=(1, 2)) > 0)
        for contrast in CONTRASTS:
            params = random_params(contrast, rng, model.spacing)
            volume = render_contrast(model, contrast, params)  # type: ignore[arg-type]
            for i in range(cfg.slices_per_phantom):
                pool = lesion_slices if (i % 2 == 0 and lesion_slices.size) else candidates
                k = int(rng.choice(pool))
                idx = np.clip(np.arange(k - half, k + half + 1), 0, nz - 1)
                stack = volume[idx].copy()
                labels = None
                if cfg.uses_labels:
                    labels = model.oedema_mask[k].astype(np.uint8)
                    labels[model.lesion_mask[k]] = 2
                bank.append(SliceStack(stack, params, contrast, normalisation_scale(stack[half]), labels))
        logger.info("phantom %d: %s spacing %s, bank %d stacks", seed, model.shape, model.spacing, len(bank))
    return bank


def _texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative texture (1 +- a few %), so the net learns to keep fine tissue texture."""
    amplitude = rng.uniform(0.0, 0.04)
    field = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(0.7, 2.0))
    field /= field.std() + 1e-8
    return (1.0 + amplitude * field).astype(np.float32)


def make_pair(
    stack: SliceStack,
    rng: np.random.Generator,
    patch: int,
    low_noise_fraction: float = 0.0,
    lesion_crop: float = 0.0,
) -> TrainingPair:
    """Crop, add texture, degrade through k-space with a noise level, mask and factor drawn here; augment.

    The crop is degraded as its own field of view: blur from truncation, partial Fourier and elliptical
    sampling depends on the sampled k-space fraction only, and noise is white, so this is cheap and faithful
    (only undersampling aliasing wraps within the crop). A margin keeps the wrap-around edge out of the patch.
    ``low_noise_fraction`` of the pairs draw the noise from 0.4-2 % only; ``lesion_crop`` of the crops (of
    stacks with a lesion or oedema label) contain a random lesion/oedema pixel. Both 0 draw nothing extra.
    """
    h, w = stack.clean.shape[-2:]
    p = min(patch, h, w)
    m = min(_CROP_MARGIN, (h - p) // 2, (w - p) // 2)
    centre = stack.clean.shape[0] // 2
    roi = None
    if lesion_crop and stack.labels is not None and rng.uniform() < lesion_crop:
        roi = np.argwhere(stack.labels > 0)
    if roi is not None and len(roi):
        cy, cx = roi[int(rng.integers(len(roi)))]
        y0 = int(np.clip(cy - m - int(rng.integers(p // 4, 3 * p // 4)), 0, h - p - 2 * m))
        x0 = int(np.clip(cx - m - int(rng.integers(p // 4, 3 * p // 4)), 0, w - p - 2 * m))
    else:
        for _ in range(10):
            y0, x0 = int(rng.integers(0, h - p - 2 * m + 1)), int(rng.integers(0, w - p - 2 * m + 1))
            if stack.clean[centre, y0 + m + p // 2, x0 + m + p // 2] > 0.05 * stack.scale:
                break
    clean = stack.clean[:, y0 : y0 + p + 2 * m, x0 : x0 + p + 2 * m] * _texture((p + 2 * m, p + 2 * m), rng)
    top = 0.02 if (low_noise_fraction and rng.uniform() < low_noise_fraction) else 0.12
    level = math.exp(rng.uniform(math.log(0.004), math.log(top)))
    degraded = degrade(clean, random_mask(rng), level * stack.scale, seed=int(rng.integers(2**31)))
    inner = (slice(None), slice(m, m + p), slice(m, m + p))
    scale = stack.scale * rng.uniform(0.8, 1.25)
    image, target = degraded[inner] / scale, clean[inner][centre : centre + 1] / scale
    labels = None
    if stack.labels is not None:
        labels = stack.labels[None, y0 + m : y0 + m + p, x0 + m : x0 + m + p]
    k = int(rng.integers(4))
    image, target = np.rot90(image, k, axes=(1, 2)), np.rot90(target, k, axes=(1, 2))
    if labels is not None:
        labels = np.rot90(labels, k, axes=(1, 2))
    if rng.uniform() < 0.5:
        image, target = image[:, :, ::-1], target[:, :, ::-1]
        labels = labels[:, :, ::-1] if labels is not None else None
    factor = math.exp(rng.uniform(math.log(2.0), math.log(100.0)))
    context = context_from_params(stack.params, (h, w), factor)
    return TrainingPair(
        np.ascontiguousarray(image, dtype=np.float32),
        np.ascontiguousarray(target, dtype=np.float32),
        context,
        None if labels is None else np.ascontiguousarray(labels),
    )


def collate(pairs: list[TrainingPair]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack pairs into ``image (N, S, P, P)``, ``target (N, 1, P, P)``, ``context (N, D)``."""
    return (
        torch.from_numpy(np.stack([p.image for p in pairs])),
        torch.from_numpy(np.stack([p.target for p in pairs])),
        torch.from_numpy(np.stack([p.context for p in pairs])),
    )


def collate_labels(pairs: list[TrainingPair]) -> torch.Tensor | None:
    """Stack the pairs' label maps ``(N, 1, P, P)``, or None where a pair has none."""
    if any(p.labels is None for p in pairs):
        return None
    return torch.from_numpy(np.stack([p.labels for p in pairs]))


def correction_loss(
    model: ContextUNet,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    cfg: TrainConfig | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 between the predicted and the true full correction (clean minus input centre slice).

    With ``cfg`` the fine-tuning terms are added: L1 weighted by ``1 + roi_weight`` inside lesion and oedema,
    ``grad_weight`` x L1 of the error's horizontal and vertical differences, and ``contrast_weight`` x the
    absolute error of the lesion-minus-oedema mean difference of each patch that holds at least 16 pixels of
    both (the error of the output's lesion-to-oedema contrast, in units of the normalised intensity).
    """
    image, target, context = batch
    centre = image[:, model.in_chans // 2 : model.in_chans // 2 + 1]
    error = model.correction(image, context) - (target - centre)
    if cfg is None or not (cfg.roi_weight or cfg.grad_weight or cfg.contrast_weight):
        return error.abs().mean()
    if labels is not None and cfg.roi_weight:
        weight = 1.0 + cfg.roi_weight * (labels > 0).to(error.dtype)
        loss = (error.abs() * weight).sum() / weight.sum()
    else:
        loss = error.abs().mean()
    if cfg.grad_weight:
        dy = (error[..., 1:, :] - error[..., :-1, :]).abs().mean()
        dx = (error[..., :, 1:] - error[..., :, :-1]).abs().mean()
        loss = loss + cfg.grad_weight * 0.5 * (dx + dy)
    if labels is not None and cfg.contrast_weight:
        lesion, oedema = (labels == 2).to(error.dtype), (labels == 1).to(error.dtype)
        n_lesion, n_oedema = lesion.sum(dim=(1, 2, 3)), oedema.sum(dim=(1, 2, 3))
        valid = (n_lesion >= 16) & (n_oedema >= 16)
        if bool(valid.any()):
            diff = (error * lesion).sum(dim=(1, 2, 3)) / n_lesion.clamp(min=1) - (error * oedema).sum(
                dim=(1, 2, 3)
            ) / n_oedema.clamp(min=1)
            loss = loss + cfg.contrast_weight * diff[valid].abs().mean()
    return loss


def psnr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB with the reference's maximum as data range."""
    mse = float(np.mean((estimate - reference) ** 2))
    return 10.0 * math.log10(float(reference.max()) ** 2 / max(mse, 1e-20))


Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@torch.no_grad()
def evaluate(model: ContextUNet, batches: list[Tensors]) -> dict[str, float]:
    """Validation L1 of the correction and mean PSNR of identity and model (full strength) vs clean.

    Batches may live on any device: each is moved to the model's.
    """
    model.eval()
    device = next(model.parameters()).device
    losses, psnr_in, psnr_out, count = [], [], [], 0
    for batch in batches:
        image, target, context = (t.to(device) for t in batch)
        losses.append(float(correction_loss(model, (image, target, context))) * len(image))
        count += len(image)
        centre = image[:, model.in_chans // 2 : model.in_chans // 2 + 1]
        output = centre + model.correction(image, context)
        for c, o, t in zip(
            centre.float().cpu().numpy(), output.float().cpu().numpy(), target.cpu().numpy(), strict=True
        ):
            psnr_in.append(psnr(c, t))
            psnr_out.append(psnr(o, t))
    model.train()
    return {
        "val_l1": sum(losses) / count,
        "val_psnr_identity": float(np.mean(psnr_in)),
        "val_psnr_model": float(np.mean(psnr_out)),
    }


def batches_of(pairs: list[TrainingPair], size: int = 8) -> list[Tensors]:
    """Validation pairs collated into batches."""
    return [collate(pairs[i : i + size]) for i in range(0, len(pairs), size)]


def learning_rate(peak: float, progress: float) -> float:
    """Linear warm-up over the first 3 % then cosine decay; ``progress`` counts steps or wall time."""
    if progress < 0.03:
        return peak * max(progress / 0.03, 0.05)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class PhantomPairs:
    """Pairs made on the CPU from rendered phantom stacks (``make_pair``): the CPU configs' data."""

    def __init__(self, cfg: TrainConfig, seed: int, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        self.bank = build_bank([seed * 10_000 + i for i in range(cfg.train_phantoms)], cfg, rng)

    def batch(self, n: int) -> tuple[Tensors, torch.Tensor | None]:
        cfg = self.cfg
        pairs = [
            make_pair(
                self.bank[int(self.rng.integers(len(self.bank)))],
                self.rng,
                cfg.patch,
                cfg.low_noise_fraction,
                cfg.lesion_crop,
            )
            for _ in range(n)
        ]
        return collate(pairs), collate_labels(pairs)

    def state(self) -> dict:
        return {"numpy": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["numpy"]


class SynthPairs:
    """Pairs synthesised on the training device (``synth.py``): the GPU configs' data."""

    def __init__(self, bank: synth.AnatomyBank, cfg: TrainConfig, seed: int) -> None:
        self.synthesizer = synth.PairSynthesizer(
            bank, synth.SynthConfig(patch=cfg.patch, in_chans=cfg.in_chans, coils=cfg.coils), seed
        )

    def batch(self, n: int) -> tuple[Tensors, None]:
        return tuple(self.synthesizer.batch(n)), None  # type: ignore[return-value]

    def state(self) -> dict:
        return self.synthesizer.state()

    def set_state(self, state: dict) -> None:
        self.synthesizer.set_state(state)


def _data(
    cfg: TrainConfig, seed: int, device: torch.device, cache: Path, workers: int
) -> tuple[PhantomPairs | SynthPairs, list[Tensors]]:
    """The training pair source and the fixed validation batches (phantom seeds disjoint from training)."""
    if cfg.data == "synth":
        matrix = cfg.matrices[0]
        train_seeds = [seed * 10_000 + i for i in range(cfg.train_phantoms)]
        val_seeds = [VALIDATION_SEED_OFFSET + i for i in range(cfg.val_phantoms)]
        anatomies = synth.cached_anatomies(train_seeds + val_seeds, cache, matrix, workers)
        n_train = len(train_seeds)
        bank = synth.AnatomyBank(anatomies[:n_train], train_seeds, device)
        val_bank = synth.AnatomyBank(anatomies[n_train:], val_seeds, device)
        val_source = synth.PairSynthesizer(
            val_bank,
            synth.SynthConfig(patch=cfg.patch, in_chans=cfg.in_chans, coils=cfg.coils),
            seed=VALIDATION_SEED_OFFSET,
        )
        val = [tuple(val_source.batch(8)) for _ in range(max(cfg.val_pairs // 8, 1))]
        return SynthPairs(bank, cfg, seed), val  # type: ignore[return-value]
    rng = np.random.default_rng(seed)
    source = PhantomPairs(cfg, seed, rng)
    val_rng = np.random.default_rng([seed, VALIDATION_SEED_OFFSET])
    val_bank = build_bank([VALIDATION_SEED_OFFSET + i for i in range(cfg.val_phantoms)], cfg, val_rng)
    val_pairs = [
        make_pair(val_bank[i % len(val_bank)], val_rng, cfg.patch, cfg.low_noise_fraction, cfg.lesion_crop)
        for i in range(cfg.val_pairs)
    ]
    return source, batches_of(val_pairs)


class TrainResult(NamedTuple):
    """Outcome of :func:`train`: the model, its metrics before/after, and the loss curve."""

    model: ContextUNet
    initial: dict[str, float]
    final: dict[str, float]
    losses: list[float]
    steps: int
    seconds: float
    precision: str = "fp32"


PRECISIONS = ("auto", "fp32", "tf32", "bf16")


def _set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def _load_init(model: ContextUNet, init: Path) -> None:
    checkpoint = torch.load(init, map_location="cpu", weights_only=True)
    if checkpoint["config"] != model.config():
        raise ValueError(f"{init} holds a {checkpoint['config']} model, the config needs {model.config()}")
    model.load_state_dict({k: v.float() for k, v in checkpoint["state_dict"].items()})
    logger.info("initialised from %s (%s)", init, checkpoint.get("version"))


def train(
    cfg: TrainConfig,
    seed: int = 0,
    device: str = "cpu",
    init: Path | None = None,
    *,
    checkpoint: Path | None = None,
    checkpoint_minutes: float = 3.0,
    resume: bool = False,
    precision: str = "auto",
    cache: Path = Path("var/phantom-cache"),
    workers: int = 1,
) -> TrainResult:
    """Train a CE U-Net from ``seed`` (fine-tune from ``init`` weights); the global numpy RNG is never used.

    ``checkpoint``: written every ``checkpoint_minutes`` (model, optimiser, step, random states, time spent),
    so a run cut off loses at most that much; ``resume`` continues from it. ``precision`` on CUDA: ``auto``
    times TF32 and bf16 autocast on the first steps and keeps the faster; on CPU always fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    torch.manual_seed(seed)
    target = torch.device(device)
    on_cuda = target.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    started = time.monotonic()
    source, val_batches = _data(cfg, seed, target, cache, workers)
    logger.info("data ready in %.0f s (%s)", time.monotonic() - started, cfg.data)
    model = ContextUNet(cfg.in_chans, cfg.chans, cfg.num_pool_layers, CONTEXT_DIM)
    if init is not None:
        _load_init(model, init)
    model = model.to(target)
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    initial = evaluate(model, val_batches)
    logger.info("initial %s", initial)
    losses: list[float] = []
    spent, first_step = 0.0, 1
    budget = max(60.0 * cfg.max_minutes - (time.monotonic() - started), 1.0)
    chosen = "fp32" if not on_cuda else ("tf32" if precision == "auto" else precision)
    if resume and checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        source.set_state(state["source"])
        losses, spent, budget = state["losses"], state["spent"], state["budget"]
        first_step, initial, chosen = state["step"] + 1, state["initial"], state["precision"]
        precision = chosen
        logger.info("resumed from %s at step %d (%.0f s trained)", checkpoint, state["step"], spent)
    timing: dict[str, list[float]] = {"tf32": [], "bf16": []}
    train_start = time.monotonic() - spent
    last_checkpoint = time.monotonic()

    def save(step: int) -> None:
        assert checkpoint is not None
        spent = time.monotonic() - train_start
        _save_checkpoint(checkpoint, model, optimiser, source, step, losses, spent, budget, initial, chosen)

    step = first_step - 1
    for step in range(first_step, cfg.steps + 1):
        progress = max(step / cfg.steps, (time.monotonic() - train_start) / budget)
        if progress > 1.0:
            logger.warning("time budget of %.0f min reached at step %d", cfg.max_minutes, step)
            break
        if on_cuda and precision == "auto" and step - first_step < 60:
            chosen = ("tf32", "bf16")[((step - first_step) // 10) % 2]
            if step - first_step == 59:
                medians = {k: float(np.median(v)) for k, v in timing.items()}
                chosen = min(medians, key=medians.__getitem__)
                precision = chosen
                logger.info(
                    "step time tf32 %.1f ms, bf16 %.1f ms: using %s",
                    1e3 * medians["tf32"],
                    1e3 * medians["bf16"],
                    chosen,
                )
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(cfg.lr, progress)
        tick = time.perf_counter()
        batch, labels = source.batch(cfg.batch)
        image, target_slice, context = (t.to(target, non_blocking=True) for t in batch)
        if on_cuda:
            image = image.contiguous(memory_format=torch.channels_last)
            _set_tf32(chosen == "tf32")
        labels = labels.to(target) if labels is not None else None
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda and chosen == "bf16"):
            loss = correction_loss(model, (image, target_slice, context), cfg, labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
        if on_cuda and chosen in timing:
            timing[chosen].append(time.perf_counter() - tick)
        if step % 200 == 0:
            logger.info(
                "step %d loss %.5f (%.0f s)", step, np.mean(losses[-200:]), time.monotonic() - started
            )
        if step % 1000 == 0:
            logger.info("step %d %s", step, evaluate(model, val_batches))
        if checkpoint is not None and time.monotonic() - last_checkpoint > 60.0 * checkpoint_minutes:
            save(step)
            last_checkpoint = time.monotonic()
    if checkpoint is not None:
        save(step)
    final = evaluate(model, val_batches)
    model = model.cpu().to(memory_format=torch.contiguous_format)
    logger.info("final %s", final)
    return TrainResult(model, initial, final, losses, step, time.monotonic() - started, chosen)


def _save_checkpoint(
    path: Path, model, optimiser, source, step, losses, spent, budget, initial, precision
) -> None:
    """Everything a resumed run needs, written to a temporary file and renamed (a kill leaves the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "source": source.state(),
            "step": step,
            "losses": losses,
            "spent": spent,
            "budget": budget,
            "initial": initial,
            "precision": precision,
        },
        tmp,
    )
    tmp.replace(path)
    logger.info("checkpoint at step %d: %s", step, path)


def save_weights(model: ContextUNet, path: Path, version: str, metadata: dict) -> str:
    """Write half-precision weights with the model config; return the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(
        {"version": version, "config": model.config(), "state_dict": state, "metadata": metadata}, path
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument(
        "--out", type=Path, default=None, help="weights file to write (needed unless --prepare-only)"
    )
    parser.add_argument("--version", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 leaves a core free)")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--init", type=Path, default=None, help="weights to fine-tune from")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="CUDA only; auto measures")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: OUT with .ckpt")
    parser.add_argument("--checkpoint-minutes", type=float, default=2.0)
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    parser.add_argument("--cache", type=Path, default=Path("var/phantom-cache"), help="anatomy cache (synth)")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering anatomy (synth)")
    parser.add_argument("--prepare-only", action="store_true", help="render the anatomy cache and stop")
    parser.add_argument(
        "--phantoms", type=int, default=None, help="training phantoms (default: the config's)"
    )
    parser.add_argument("--batch", type=int, default=None, help="pairs per step (default: the config's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.config]
    if args.max_minutes is not None:
        cfg = cfg._replace(max_minutes=args.max_minutes)
    if args.phantoms is not None:
        cfg = cfg._replace(train_phantoms=args.phantoms)
    if args.batch is not None:
        cfg = cfg._replace(batch=args.batch)
    if args.prepare_only:
        seeds = [args.seed * 10_000 + i for i in range(cfg.train_phantoms)]
        seeds += [VALIDATION_SEED_OFFSET + i for i in range(cfg.val_phantoms)]
        synth.cached_anatomies(seeds, args.cache, cfg.matrices[0], args.workers)
        return
    if args.out is None:
        parser.error("--out is required")
    checkpoint = args.checkpoint or args.out.with_suffix(".ckpt")
    result = train(
        cfg,
        args.seed,
        args.device,
        args.init,
        checkpoint=checkpoint,
        checkpoint_minutes=args.checkpoint_minutes,
        resume=args.resume,
        precision=args.precision,
        cache=args.cache,
        workers=args.workers,
    )
    version = args.version or args.out.stem
    metadata = {
        "config": cfg._asdict(),
        "seed": args.seed,
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "precision": result.precision,
        "steps": result.steps,
        "seconds": round(result.seconds),
        "initial": result.initial,
        "final": result.final,
        "torch": str(torch.__version__),
    }
    if args.init is not None:
        metadata["init"] = {
            "path": str(args.init),
            "sha256": hashlib.sha256(args.init.read_bytes()).hexdigest(),
        }
    digest = save_weights(result.model, args.out, version, metadata)
    logger.info("wrote %s sha256 %s", args.out, digest)


if __name__ == "__main__":
    main()
