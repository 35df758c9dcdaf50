"""Enhancement quality on phantoms never trained on: every model vs identity, Gaussian, NLM and BM3D in one run.

Two families: ``mni`` is the training anatomy (``worker/enhance/phantom.py``) with phantom seeds, lesions and
degradations training never drew (seeds from ``BENCHMARK_SEED_OFFSET``); ``heldout`` is a procedural head
(``benchmarks/heldout_phantoms.py``) that shares no anatomy or relaxation table with training, the test of
generalisation. For every (family, contrast, degradation) the same degraded slices go through every method.
NLM (scikit-image, h = 0.8 sigma) and BM3D get the true noise sigma (oracles); the models get only the
DICOM-like context.

Metrics against the clean image: PSNR over the whole slice and inside the head (data range = clean maximum),
SSIM, SNR and CNR as in the paper (ROI mean, or |S1 - S2|, over the SD of background air; S1 = grey matter,
S2 = white matter), GM/WM mean deviation, white-matter noise SD ratio to the input's, lesion-to-oedema Weber
contrast, and the QA structure score of the residual. The summary gives each model's margin over the better of
NLM and BM3D in head PSNR and checks issue 9's goals (>= 1 dB at every noise level, lesion-oedema contrast
>= 95 % of the input's, tissue means within 2 %).

``python -m benchmarks.enhance_quality [--family mni|heldout|both] [--weights A.pt B.pt] [--phantoms N]
[--slices K] [--no-bm3d] [--json PATH] [--montage PNG]`` (repo root, ``--threads 1`` on shared machines)
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity
from skimage.restoration import denoise_nl_means

from benchmarks.heldout_phantoms import (
    GEOMETRY as HELDOUT_GEOMETRY,
)
from benchmarks.heldout_phantoms import (
    HELDOUT_SEED_OFFSET,
    draw_anatomy,
    heldout_params,
    make_heldout_head,
    render_heldout,
)
from benchmarks.machine import describe
from worker.enhance.degrade import KmaxMask, degrade
from worker.enhance.inference import DEFAULT_FACTOR, enhance_volume, load_model
from worker.enhance.phantom import AcquisitionParams, default_params, make_tissue_model, render_contrast
from worker.enhance.qa import residual_stats
from worker.enhance.train import BENCHMARK_SEED_OFFSET, psnr

logger = logging.getLogger("benchmarks.enhance_quality")

FAMILIES = ("mni", "heldout")
# (label, noise sigma relative to the clean 99th percentile, mask or None). 1 % is about the paper's
# conventional SNR (grey matter mean / background SD ~ 80-190); the last adds lower acquired resolution.
CONDITIONS = (
    ("noise 1%", 0.01, None),
    ("noise 2%", 0.02, None),
    ("noise 4%", 0.04, None),
    ("noise 8%", 0.08, None),
    ("noise 2% + k_max 0.7", 0.02, KmaxMask(0.7, 0.85, seed=1)),
)
NOISE_ONLY = tuple(label for label, _, mask in CONDITIONS if mask is None)
MNI_GEOMETRY = {
    "T2W": ((30, 256, 256), (5.0, 0.9, 0.9)),
    "FLAIR": ((30, 256, 256), (5.0, 0.9, 0.9)),
    "T1W_POST": ((48, 256, 256), (1.0, 0.9, 0.9)),
}
CLEAN, IDENTITY, GAUSSIAN, NLM, BM3D = (
    "clean (reference)",
    "identity (input)",
    "gaussian (oracle sigma)",
    "NLM (skimage, true sigma)",
    "BM3D (true sigma)",
)
# Issue 9's goals on the held-out family.
GOAL_MARGIN_DB = 1.0
GOAL_WEBER_VS_INPUT = 0.95
GOAL_TISSUE_DEV = 0.02
MONTAGE_CONDITION = "noise 4%"


class Slab(NamedTuple):
    """A clean slab ``(Z, Y, X)`` through the lesion with its protocol and ROIs; metrics skip the end slices."""

    family: str
    contrast: str
    clean: np.ndarray
    params: AcquisitionParams
    rois: dict[str, np.ndarray]
    seed: int


class Case(NamedTuple):
    """One degraded slab: what every method gets, and what the metrics compare against."""

    slab: Slab
    degraded: np.ndarray
    sigma: float


class Model(NamedTuple):
    """A checkpoint and the factor it runs at, under the name the tables give it."""

    name: str
    weights: Path | None
    factor: float


def _mni_slabs(n_phantoms: int, n_slices: int) -> Iterator[Slab]:
    """Slabs of the training anatomy around the lesion, from seeds training never drew."""
    for i in range(n_phantoms):
        seed = BENCHMARK_SEED_OFFSET + i
        for contrast, (shape, spacing) in MNI_GEOMETRY.items():
            model = make_tissue_model(shape, seed=seed, spacing=spacing)
            params = default_params(contrast, 3.0 if i % 2 == 0 else 1.5)._replace(  # type: ignore[arg-type]
                pixel_spacing=spacing[1], slice_thickness=spacing[0]
            )
            centre = int(np.argmax(model.lesion_mask.sum(axis=(1, 2))))
            z0 = int(np.clip(centre - n_slices // 2 - 1, 0, shape[0] - n_slices - 2))
            cut = slice(z0, z0 + n_slices + 2)
            rois = {
                "gm": ndimage.binary_erosion(model.gm[cut] > 0.85),
                "wm": ndimage.binary_erosion(model.wm[cut] > 0.95),
                "lesion": model.lesion_mask[cut],
                "oedema": model.oedema_mask[cut],
                "air": ~ndimage.binary_dilation(model.head_mask[cut], iterations=6),
                "head": model.head_mask[cut],
            }
            clean = render_contrast(model, contrast, params)[cut]  # type: ignore[arg-type]
            yield Slab("mni", contrast, clean, params, rois, seed)


def _heldout_slabs(n_phantoms: int, n_slices: int) -> Iterator[Slab]:
    """Slabs of the procedural family centred on the glioma (only the slab is rendered: fast)."""
    for i in range(n_phantoms):
        seed = HELDOUT_SEED_OFFSET + i
        centre_z = draw_anatomy(seed).lesion_centre[2]
        for contrast, (shape, spacing) in HELDOUT_GEOMETRY.items():
            head = make_heldout_head((n_slices + 2, *shape[1:]), spacing, seed, centre_z=centre_z)
            params = heldout_params(contrast, 3.0 if i % 2 == 0 else 1.5, spacing)  # type: ignore[arg-type]
            rois = {k: head.masks[k] for k in ("gm", "wm", "lesion", "oedema", "air", "head")}
            clean = render_heldout(head, contrast, params)  # type: ignore[arg-type]
            yield Slab("heldout", contrast, clean, params, rois, seed)


def _cases(family: str, n_phantoms: int, n_slices: int) -> dict[str, list[Case]]:
    """Every slab of ``family`` under every condition (fixed noise seeds: the same cases in every run)."""
    slabs = _mni_slabs if family == "mni" else _heldout_slabs
    by_condition: dict[str, list[Case]] = defaultdict(list)
    for slab in slabs(n_phantoms, n_slices):
        reference = float(np.percentile(slab.clean, 99.0))
        for j, (label, level, mask) in enumerate(CONDITIONS):
            degraded = degrade(slab.clean, mask, level * reference, seed=slab.seed * 100 + j)
            by_condition[label].append(Case(slab, degraded, level * reference))
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
    """Metrics over the inner slices (the end slices only give the model its neighbours)."""
    out, clean = output[1:-1], case.slab.clean[1:-1]
    degraded, rois = case.degraded[1:-1], {k: v[1:-1] for k, v in case.slab.rois.items()}
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
            (out - clean)[rois["wm"]].std() / max((degraded - clean)[rois["wm"]].std(), 1e-6)
        ),
        "roi_mean_dev_max": float(
            max(abs(out[rois[k]].mean() / clean[rois[k]].mean() - 1.0) for k in ("gm", "wm") if rois[k].any())
        ),
        "qa_structure": residual_stats(degraded, out).structure_score,
    }
    if rois["lesion"].any() and rois["oedema"].any():
        oedema_mean = float(out[rois["oedema"]].mean())
        result["lesion_oedema_weber"] = abs(float(out[rois["lesion"]].mean()) - oedema_mean) / max(
            oedema_mean, 1e-6
        )
    return result


def _apply(method: str, case: Case, models: dict[str, Model], device: str | None) -> np.ndarray:
    """The method's output for the whole slab (baselines filter the inner slices, which are all measured)."""
    output = case.degraded.copy()
    inner = slice(1, -1)
    if method == CLEAN:
        output = case.slab.clean.copy()
    elif method == GAUSSIAN:
        output[inner] = _gaussian(case.degraded[inner], case.slab.clean[inner])
    elif method == NLM:
        output[inner] = _nlm(case.degraded[inner], case.sigma)
    elif method == BM3D:
        output[inner] = _bm3d(case.degraded[inner], case.sigma)
    elif method in models:
        model = models[method]
        output = enhance_volume(case.degraded, case.slab.params, model.factor, device, weights=model.weights)
    return output


def _models(
    weights: list[Path | None], factors: list[float], device: str | None
) -> tuple[dict[str, Model], list]:
    """One method per (checkpoint, factor), named by the checkpoint's version (and the factor if several)."""
    models: dict[str, Model] = {}
    loaded_info = []
    for path in weights:
        loaded = load_model(str(path) if path else None, device)
        name = loaded.version if loaded.version not in {m.name for m in models.values()} else str(path)
        loaded_info.append(
            {"name": name, "version": loaded.version, "sha256": loaded.sha256, "path": str(path)}
        )
        for factor in factors:
            label = name if len(factors) == 1 else f"{name} (factor {factor:g})"
            models[label] = Model(label, path, factor)
    return models, loaded_info


def run(
    families: list[str],
    n_phantoms: int,
    n_slices: int,
    use_bm3d: bool,
    device: str | None,
    factors: list[float],
    weights: list[Path | None],
    montage: Path | None = None,
) -> dict:
    """Every method on every case of ``families``; the report is JSON-ready."""
    models, checkpoints = _models(weights, factors, device)
    methods = [CLEAN, IDENTITY, GAUSSIAN, NLM, *([BM3D] if use_bm3d else []), *models]
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    timings: dict[str, float] = defaultdict(float)
    examples: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for family in families:
        results[family] = {}
        for label, cases in _cases(family, n_phantoms, n_slices).items():
            per_method: dict[str, list[dict[str, float]]] = defaultdict(list)
            for index, case in enumerate(cases):
                for method in methods:
                    started = time.perf_counter()
                    output = _apply(method, case, models, device)
                    timings[method] += time.perf_counter() - started
                    per_method[method].append(_metrics(case, output))
                    if family == "heldout" and label == MONTAGE_CONDITION and index < len(HELDOUT_GEOMETRY):
                        examples[case.slab.contrast][method] = output[len(output) // 2]
                        examples[case.slab.contrast]["noisy"] = case.degraded[len(output) // 2]
            results[family][label] = {
                m: {k: float(np.mean([r[k] for r in rows if k in r])) for k in rows[0]}
                for m, rows in per_method.items()
            }
            logger.info("%s / %s done", family, label)
    if montage is not None and examples:
        save_montage(examples, [m for m in methods if m not in (IDENTITY, GAUSSIAN)], montage)
    return {
        "machine": describe(),
        "torch_threads": torch.get_num_threads(),
        "results": results,
        "summary": summarise(results, list(models)),
        "seconds": dict(timings),
        "checkpoints": checkpoints,
        "factors": factors,
        "phantoms": n_phantoms,
        "slices_per_case": n_slices,
        "conditions": [label for label, _, _ in CONDITIONS],
        "contrasts": list(HELDOUT_GEOMETRY),
    }


def summarise(results: dict, model_names: list[str]) -> dict:
    """Per family, condition and model: the margin over the better classical baseline and the goal checks."""
    summary: dict[str, dict[str, dict[str, dict]]] = {}
    for family, conditions in results.items():
        summary[family] = {}
        for label, methods in conditions.items():
            classical = [m for m in (NLM, BM3D) if m in methods]
            best = max(classical, key=lambda m: methods[m]["psnr_head"])
            rows = {}
            for name in model_names:
                values = methods[name]
                margin = values["psnr_head"] - methods[best]["psnr_head"]
                vs_input = values["lesion_oedema_weber"] / methods[IDENTITY]["lesion_oedema_weber"]
                rows[name] = {
                    "psnr_head": values["psnr_head"],
                    "best_classical": best,
                    "best_classical_psnr_head": methods[best]["psnr_head"],
                    "margin_db": margin,
                    "weber_vs_input": vs_input,
                    "weber_vs_clean": values["lesion_oedema_weber"] / methods[CLEAN]["lesion_oedema_weber"],
                    "tissue_dev_max": values["roi_mean_dev_max"],
                    "tissue_sd_ratio": values["tissue_sd_ratio"],
                    "goals_met": bool(
                        margin >= GOAL_MARGIN_DB
                        and vs_input >= GOAL_WEBER_VS_INPUT
                        and values["roi_mean_dev_max"] <= GOAL_TISSUE_DEV
                    ),
                }
            summary[family][label] = rows
    return summary


def save_montage(examples: dict[str, dict[str, np.ndarray]], methods: list[str], path: Path) -> None:
    """Middle slice of the first held-out phantom per contrast: clean, noisy, then each method's output."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = [CLEAN, "noisy", *(m for m in methods if m != CLEAN)]
    fig, axes = plt.subplots(len(examples), len(columns), figsize=(3 * len(columns), 3.2 * len(examples)))
    for row, (contrast, images) in zip(np.atleast_2d(axes), examples.items(), strict=True):
        top = float(np.percentile(images[CLEAN], 99.5))
        for ax, column in zip(row, columns, strict=True):
            ax.imshow(images[column], cmap="gray", vmin=0.0, vmax=top)
            ax.set_title(f"{contrast}: {column.split(' (')[0]}", fontsize=9)
            ax.axis("off")
    fig.suptitle(f"held-out phantom family, {MONTAGE_CONDITION}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


_THREE_DECIMALS = ("ssim", "tissue_sd_ratio", "roi_mean_dev_max", "lesion_oedema_weber", "qa_structure")


def to_markdown(report: dict) -> str:
    """The goal summary (held-out family first), then one full table per family and condition."""
    lines = [
        "| family | condition | model | PSNR head: input / NLM / BM3D / **model** | margin over best classical (dB)"
        " | lesion–oedema Weber vs input / vs clean | GM/WM mean dev. | WM noise SD ratio | goals |",
        "|---" * 9 + "|",
    ]
    results = report["results"]
    for family in sorted(report["summary"], key=lambda f: f != "heldout"):
        for label, rows in report["summary"][family].items():
            methods = results[family][label]
            baselines = " / ".join(
                f"{methods[m]['psnr_head']:.2f}" if m in methods else "–" for m in (IDENTITY, NLM, BM3D)
            )
            for name, row in rows.items():
                lines.append(
                    f"| {family} | {label} | {name} | {baselines} / **{row['psnr_head']:.2f}** "
                    f"| {row['margin_db']:+.2f} ({row['best_classical'].split(' ')[0]}) "
                    f"| {row['weber_vs_input']:.3f} / {row['weber_vs_clean']:.3f} "
                    f"| {100 * row['tissue_dev_max']:.1f} % | {row['tissue_sd_ratio']:.2f} "
                    f"| {'met' if row['goals_met'] else 'not met'} |"
                )
    lines.append("")
    columns = ("psnr", "psnr_head", "ssim", "snr_gm", "snr_wm", "cnr", *_THREE_DECIMALS[1:])
    for family, conditions in results.items():
        for label, methods in conditions.items():
            lines += [f"**{family}: {label}**", "", "| method | " + " | ".join(columns) + " |"]
            lines.append("|---" * (len(columns) + 1) + "|")
            for method, values in methods.items():
                cells = [
                    f"{values.get(c, float('nan')):.{3 if c in _THREE_DECIMALS else 2}f}" for c in columns
                ]
                lines.append(f"| {method} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=(*FAMILIES, "both"), default="both")
    parser.add_argument("--phantoms", type=int, default=1)
    parser.add_argument("--slices", type=int, default=2, help="measured slices per slab (plus one each side)")
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--factor", type=float, action="append", help=f"repeatable; default {DEFAULT_FACTOR:g}"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--montage", type=Path, default=None, help="PNG of held-out slices (needs heldout)")
    parser.add_argument(
        "--weights",
        type=Path,
        nargs="+",
        default=None,
        help="checkpoints to compare; default: the shipped one",
    )
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
    families = list(FAMILIES) if args.family == "both" else [args.family]
    report = run(
        families,
        args.phantoms,
        args.slices,
        use_bm3d,
        args.device,
        args.factor or [DEFAULT_FACTOR],
        args.weights or [None],
        args.montage,
    )
    print(report["machine"])
    print(to_markdown(report))
    print("seconds per method:", {k: round(v, 1) for k, v in report["seconds"].items()})
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
