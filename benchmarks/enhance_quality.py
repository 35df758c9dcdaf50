"""Enhancement quality on held-out phantoms: model vs identity, Gaussian smoothing, non-local means and BM3D.

Held-out means phantom seeds, lesions and degradations the training never drew (seeds from
``BENCHMARK_SEED_OFFSET``; training used ``seed * 10_000 + i``, validation ``VALIDATION_SEED_OFFSET + i``).
For every (contrast, degradation) the same degraded slices go through every method in this one run.

Metrics against the clean image: PSNR and SSIM (data range = clean maximum), SNR and CNR as in the paper
(ROI mean, or |S1 - S2|, over the SD of background air; S1 = grey matter, S2 = white matter), mean intensity
deviation in tissue ROIs, lesion-to-oedema contrast, and the QA structure score of the residual.

``python -m benchmarks.enhance_quality [--phantoms N] [--slices K] [--no-bm3d] [--json PATH]`` (repo root)
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity
from skimage.restoration import denoise_nl_means

from worker.enhance.degrade import KmaxMask, PartialFourierMask, degrade
from worker.enhance.inference import DEFAULT_FACTOR, enhance_volume, load_model
from worker.enhance.phantom import default_params, make_tissue_model, render_contrast
from worker.enhance.qa import residual_stats
from worker.enhance.train import BENCHMARK_SEED_OFFSET, psnr

logger = logging.getLogger("benchmarks.enhance_quality")

# (label, noise sigma relative to the clean 99th percentile, mask or None). 0.01 is about the paper's
# conventional SNR (grey matter mean / background SD ~ 110-190).
CONDITIONS = (
    ("noise 1% (paper-like)", 0.01, None),
    ("noise 2%", 0.02, None),
    ("noise 4%", 0.04, None),
    ("noise 8%", 0.08, None),
    ("noise 2% + kmax 0.7", 0.02, KmaxMask(0.7, 0.85, seed=1)),
    ("noise 2% + partial Fourier 0.6", 0.02, PartialFourierMask(0.6, seed=1)),
)
GEOMETRY = {
    "T2W": ((30, 256, 256), (5.0, 0.9, 0.9)),
    "FLAIR": ((30, 256, 256), (5.0, 0.9, 0.9)),
    "T1W_POST": ((48, 256, 256), (1.0, 0.9, 0.9)),
}


class Case(NamedTuple):
    """Clean and degraded slab ``(Z, Y, X)`` with its ROIs; metrics use the inner slices only."""

    contrast: str
    clean: np.ndarray
    degraded: np.ndarray
    sigma: float
    params: object
    rois: dict[str, np.ndarray]
    inner: slice


def _cases(n_phantoms: int, n_slices: int, conditions) -> dict[str, list[Case]]:
    """Held-out slabs around the lesion for every condition."""
    by_condition: dict[str, list[Case]] = defaultdict(list)
    for i in range(n_phantoms):
        seed = BENCHMARK_SEED_OFFSET + i
        for contrast, (shape, spacing) in GEOMETRY.items():
            model = make_tissue_model(shape, seed=seed, spacing=spacing)
            field = 3.0 if i % 2 == 0 else 1.5
            params = default_params(contrast, field)._replace(
                pixel_spacing=spacing[1], slice_thickness=spacing[0]
            )
            clean_volume = render_contrast(model, contrast, params)
            centre = int(np.argmax(model.lesion_mask.sum(axis=(1, 2))))
            z0 = int(np.clip(centre - n_slices // 2 - 1, 0, shape[0] - n_slices - 2))
            slab = slice(z0, z0 + n_slices + 2)
            clean = clean_volume[slab]
            air = ~ndimage.binary_dilation(model.head_mask[slab], iterations=6)
            rois = {
                "gm": ndimage.binary_erosion(model.gm[slab] > 0.85),
                "wm": ndimage.binary_erosion(model.wm[slab] > 0.95),
                "csf": model.csf[slab] > 0.9,
                "lesion": model.lesion_mask[slab],
                "oedema": model.oedema_mask[slab],
                "air": air,
                "head": model.head_mask[slab],
            }
            reference = float(np.percentile(clean, 99.0))
            for j, (label, level, mask) in enumerate(conditions):
                degraded = degrade(clean, mask, level * reference, seed=seed * 100 + j)
                by_condition[label].append(
                    Case(contrast, clean, degraded, level * reference, params, rois, slice(1, -1))
                )
    return by_condition


def _gaussian(image: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Per-slice Gaussian smoothing with sigma chosen by oracle PSNR (a generous baseline)."""
    candidates = [ndimage.gaussian_filter(image, (0, s, s)) for s in (0.5, 0.75, 1.0, 1.5)]
    return max(candidates, key=lambda c: psnr(c, clean))


def _nlm(image: np.ndarray, sigma: float) -> np.ndarray:
    """scikit-image non-local means with the true noise level (h = 0.8 sigma, fast mode)."""
    return np.stack(
        [
            denoise_nl_means(s, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)
            for s in image
        ]
    ).astype(np.float32)


def _bm3d(image: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (PyPI ``bm3d``) per slice with the true noise level."""
    import bm3d

    return np.stack([bm3d.bm3d(s, sigma_psd=sigma) for s in image]).astype(np.float32)


def _masked_psnr(output: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> float:
    """PSNR over the head only (air excluded), data range = clean maximum."""
    mse = float(np.mean((output[mask] - clean[mask]) ** 2))
    return 10.0 * np.log10(float(clean.max()) ** 2 / max(mse, 1e-20))


def _metrics(case: Case, output: np.ndarray) -> dict[str, float]:
    inner = case.inner
    out, clean, rois = output[inner], case.clean[inner], {k: v[inner] for k, v in case.rois.items()}
    data_range = float(clean.max())
    background_sd = float(out[rois["air"]].std()) or float("nan")
    s1, s2 = float(out[rois["gm"]].mean()), float(out[rois["wm"]].mean())
    result = {
        "psnr": float(np.mean([psnr(o, c) for o, c in zip(out, clean, strict=True)])),
        "psnr_head": _masked_psnr(out, clean, rois["head"]),
        "ssim": float(
            np.mean(
                [structural_similarity(o, c, data_range=data_range) for o, c in zip(out, clean, strict=True)]
            )
        ),
        "snr_gm": s1 / background_sd,
        "snr_wm": s2 / background_sd,
        "cnr": abs(s1 - s2) / background_sd,
        "tissue_sd_ratio": float(
            (out - clean)[rois["wm"]].std() / max((case.degraded[inner] - clean)[rois["wm"]].std(), 1e-6)
        ),
    }
    deviations = [
        abs(out[rois[k]].mean() / clean[rois[k]].mean() - 1.0) for k in ("gm", "wm") if rois[k].any()
    ]
    result["roi_mean_dev_max"] = float(max(deviations))
    if rois["lesion"].any() and rois["oedema"].any():
        oedema_mean = float(out[rois["oedema"]].mean())
        result["lesion_oedema_weber"] = abs(float(out[rois["lesion"]].mean()) - oedema_mean) / max(
            oedema_mean, 1e-6
        )
    result["qa_structure"] = residual_stats(case.degraded[inner], out).structure_score
    return result


def run(
    n_phantoms: int,
    n_slices: int,
    use_bm3d: bool,
    device: str | None,
    factors: list[float],
    weights: Path | None = None,
) -> dict:
    loaded = load_model(str(weights) if weights else None, device)
    methods = (
        ["clean (reference)", "identity", "gaussian (oracle sigma)", "NLM (skimage)"]
        + (["BM3D"] if use_bm3d else [])
        + [f"CE U-Net {loaded.version} (factor {f:g})" for f in factors]
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    timings: dict[str, float] = defaultdict(float)
    for label, cases in _cases(n_phantoms, n_slices, CONDITIONS).items():
        per_method: dict[str, list[dict[str, float]]] = defaultdict(list)
        for case in cases:
            for method in methods:
                started = time.perf_counter()
                output = case.degraded.copy()
                inner = case.inner
                if method.startswith("clean"):
                    output = case.clean.copy()
                elif method.startswith("gaussian"):
                    output[inner] = _gaussian(case.degraded[inner], case.clean[inner])
                elif method.startswith("NLM"):
                    output[inner] = _nlm(case.degraded[inner], case.sigma)
                elif method == "BM3D":
                    output[inner] = _bm3d(case.degraded[inner], case.sigma)
                elif method.startswith("CE U-Net"):
                    factor = float(method.rsplit(" ", 1)[1].rstrip(")"))
                    output = enhance_volume(case.degraded, case.params, factor, device, weights=weights)
                timings[method] += time.perf_counter() - started
                per_method[method].append(_metrics(case, output))
        results[label] = {
            m: {k: float(np.mean([r[k] for r in rows if k in r])) for k in rows[0]}
            for m, rows in per_method.items()
        }
        logger.info("%s done", label)
    return {
        "results": results,
        "seconds": dict(timings),
        "model": loaded.version,
        "sha256": loaded.sha256,
        "factors": factors,
        "phantoms": n_phantoms,
        "slices_per_case": n_slices,
        "contrasts": list(GEOMETRY),
    }


def to_markdown(report: dict) -> str:
    """One table per condition, methods as rows."""
    columns = (
        "psnr",
        "psnr_head",
        "ssim",
        "snr_gm",
        "snr_wm",
        "cnr",
        "tissue_sd_ratio",
        "roi_mean_dev_max",
        "lesion_oedema_weber",
        "qa_structure",
    )
    lines = []
    for label, methods in report["results"].items():
        lines += [
            f"**{label}**",
            "",
            "| method | " + " | ".join(columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for method, values in methods.items():
            cells = [
                f"{values[c]:.3f}"
                if c
                in (
                    "ssim",
                    "tissue_sd_ratio",
                    "roi_mean_dev_max",
                    "lesion_oedema_weber",
                    "qa_structure",
                )
                else f"{values[c]:.2f}"
                for c in columns
            ]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phantoms", type=int, default=2)
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--factor", type=float, action="append", help=f"repeatable; default {DEFAULT_FACTOR:g}"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    use_bm3d = not args.no_bm3d
    if use_bm3d:
        try:
            import bm3d  # noqa: F401
        except ImportError:
            logger.warning("bm3d is not installed (requirements-dev.txt); running without it")
            use_bm3d = False
    report = run(
        args.phantoms, args.slices, use_bm3d, args.device, args.factor or [DEFAULT_FACTOR], args.weights
    )
    print(to_markdown(report))
    print("seconds per method:", {k: round(v, 1) for k, v in report["seconds"].items()})
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
