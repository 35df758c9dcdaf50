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

from .context import CONTEXT_DIM, context_from_params
from .degrade import degrade, random_mask
from .inference import normalisation_scale
from .model import ContextUNet
from .phantom import (
    CONTRASTS,
    AcquisitionParams,
    csf_null_ti,
    default_params,
    make_tissue_model,
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


def random_params(
    contrast: str, rng: np.random.Generator, spacing: tuple[float, float, float]
) -> AcquisitionParams:
    """Parameters around a typical protocol, jittered as between sites and vendors."""
    field = float(rng.choice([1.5, 3.0]))
    base = default_params(contrast, field)  # type: ignore[arg-type]
    tr = base.tr * rng.uniform(0.8, 1.25)
    te = base.te * rng.uniform(0.8, 1.2)
    ti, flip = base.ti, base.flip_angle
    if contrast == "FLAIR":
        ti = csf_null_ti(tr, field) * rng.uniform(0.95, 1.05)
    elif contrast == "T1W_POST":
        ti = 0.0 if rng.uniform() < 0.25 else base.ti * rng.uniform(0.85, 1.2)
        flip = rng.uniform(7.0, 13.0) if ti else rng.uniform(12.0, 20.0)
    return AcquisitionParams(field, tr, te, ti, flip, spacing[1], spacing[0], spacing[0] <= 1.5)


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


@torch.no_grad()
def evaluate(model: ContextUNet, pairs: list[TrainingPair]) -> dict[str, float]:
    """Validation L1 of the correction and mean PSNR of identity and model (full strength) vs clean."""
    model.eval()
    losses, psnr_in, psnr_out = [], [], []
    for i in range(0, len(pairs), 8):
        batch = collate(pairs[i : i + 8])
        losses.append(float(correction_loss(model, batch)) * len(pairs[i : i + 8]))
        image, target, context = batch
        centre = image[:, model.in_chans // 2 : model.in_chans // 2 + 1]
        output = centre + model.correction(image, context)
        for c, o, t in zip(centre.numpy(), output.numpy(), target.numpy(), strict=True):
            psnr_in.append(psnr(c, t))
            psnr_out.append(psnr(o, t))
    model.train()
    return {
        "val_l1": sum(losses) / len(pairs),
        "val_psnr_identity": float(np.mean(psnr_in)),
        "val_psnr_model": float(np.mean(psnr_out)),
    }


def learning_rate(peak: float, progress: float) -> float:
    """Linear warm-up over the first 3 % then cosine decay; ``progress`` counts steps or wall time."""
    if progress < 0.03:
        return peak * max(progress / 0.03, 0.05)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class TrainResult(NamedTuple):
    """Outcome of :func:`train`: the model, its metrics before/after, and the loss curve."""

    model: ContextUNet
    initial: dict[str, float]
    final: dict[str, float]
    losses: list[float]
    steps: int
    seconds: float


def train(cfg: TrainConfig, seed: int = 0, device: str = "cpu", init: Path | None = None) -> TrainResult:
    """Train a CE U-Net from ``seed`` (fine-tune from ``init`` weights); the global numpy RNG is never used."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    train_bank = build_bank([seed * 10_000 + i for i in range(cfg.train_phantoms)], cfg, rng)
    val_rng = np.random.default_rng([seed, VALIDATION_SEED_OFFSET])
    val_bank = build_bank([VALIDATION_SEED_OFFSET + i for i in range(cfg.val_phantoms)], cfg, val_rng)
    val_pairs = [
        make_pair(val_bank[i % len(val_bank)], val_rng, cfg.patch, cfg.low_noise_fraction, cfg.lesion_crop)
        for i in range(cfg.val_pairs)
    ]
    logger.info("data ready in %.0f s: %d train stacks", time.monotonic() - started, len(train_bank))
    model = ContextUNet(cfg.in_chans, cfg.chans, cfg.num_pool_layers, CONTEXT_DIM)
    if init is not None:
        checkpoint = torch.load(init, map_location="cpu", weights_only=True)
        if checkpoint["config"] != model.config():
            raise ValueError(
                f"{init} holds a {checkpoint['config']} model, the config needs {model.config()}"
            )
        model.load_state_dict({k: v.float() for k, v in checkpoint["state_dict"].items()})
        logger.info("initialised from %s (%s)", init, checkpoint.get("version"))
    model = model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    initial = evaluate(model, val_pairs)
    logger.info("initial %s", initial)
    losses: list[float] = []
    train_start = time.monotonic()
    budget = max(started + 60.0 * cfg.max_minutes - train_start, 1.0)
    step = 0
    for step in range(1, cfg.steps + 1):
        progress = max(step / cfg.steps, (time.monotonic() - train_start) / budget)
        if progress > 1.0:
            logger.warning("time budget of %.0f min reached at step %d", cfg.max_minutes, step)
            break
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(cfg.lr, progress)
        pairs = [
            make_pair(
                train_bank[int(rng.integers(len(train_bank)))],
                rng,
                cfg.patch,
                cfg.low_noise_fraction,
                cfg.lesion_crop,
            )
            for _ in range(cfg.batch)
        ]
        batch = tuple(t.to(device) for t in collate(pairs))
        labels = collate_labels(pairs)
        labels = labels.to(device) if labels is not None else None
        loss = correction_loss(model, batch, cfg, labels)  # type: ignore[arg-type]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
        if step % 200 == 0:
            logger.info(
                "step %d loss %.5f (%.0f s)", step, np.mean(losses[-200:]), time.monotonic() - started
            )
        if step % 1000 == 0:
            logger.info("step %d %s", step, evaluate(model, val_pairs))
    final = evaluate(model.cpu(), val_pairs)
    logger.info("final %s", final)
    return TrainResult(model, initial, final, losses, step, time.monotonic() - started)


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
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--version", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 leaves a core free)")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--init", type=Path, default=None, help="weights to fine-tune from")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.config]
    if args.max_minutes is not None:
        cfg = cfg._replace(max_minutes=args.max_minutes)
    result = train(cfg, args.seed, args.device, args.init)
    version = args.version or args.out.stem
    metadata = {
        "config": cfg._asdict(),
        "seed": args.seed,
        "device": args.device,
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
