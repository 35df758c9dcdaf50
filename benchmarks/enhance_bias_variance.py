"""Where the enhancement's error at one noise level comes from: residual noise (variance) or softened edges (bias).

Each held-out slab of ``enhance_quality`` is degraded with several independent noise draws; for the model and
for BM3D (true sigma) the in-head squared error is split into the squared bias of the mean output and the
variance across draws, and reported separately on flat tissue and on the steepest quarter of edges.

``python -m benchmarks.enhance_bias_variance [--family mni|heldout] [--noise 0.01] [--draws 3] [--weights PATH]
[--no-bm3d]``
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch
from scipy import ndimage

from benchmarks.enhance_quality import _bm3d, _heldout_slabs, _mni_slabs
from worker.enhance.degrade import degrade
from worker.enhance.inference import DEFAULT_FACTOR, enhance_volume


def split_error(outputs: np.ndarray, clean: np.ndarray, head: np.ndarray) -> dict[str, float]:
    """MSE, squared bias (corrected for the finite number of draws) and variance over ``head``; edges vs flat."""
    draws = len(outputs)
    variance = outputs.var(axis=0, ddof=1)
    bias2 = (outputs.mean(axis=0) - clean) ** 2 - variance / draws
    error = ((outputs - clean[None]) ** 2).mean(axis=0)
    edges = ndimage.gaussian_gradient_magnitude(clean, 1.0)
    steep = edges >= np.percentile(edges[head], 75)
    return {
        "mse": float(error[head].mean()),
        "bias2": float(bias2[head].mean()),
        "variance": float(variance[head].mean()),
        "mse_flat": float(error[head & ~steep].mean()),
        "mse_edges": float(error[head & steep].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.01, help="sigma relative to the clean 99th percentile")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--family", choices=("mni", "heldout"), default="mni")
    parser.add_argument("--weights", default=None, help="default: the shipped weights")
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    if args.draws < 2:
        parser.error("--draws must be at least 2")
    methods = ["model"] + ([] if args.no_bm3d else ["BM3D"])
    rows: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    slabs = _heldout_slabs if args.family == "heldout" else _mni_slabs
    for index, case in enumerate(slabs(1, 3)):
        inner = slice(1, -1)
        sigma = args.noise * float(np.percentile(case.clean, 99.0))
        outputs: dict[str, list[np.ndarray]] = {m: [] for m in methods}
        for draw in range(args.draws):
            degraded = degrade(case.clean, None, sigma, seed=777 + 31 * draw + index)
            outputs["model"].append(
                enhance_volume(degraded, case.params, DEFAULT_FACTOR, None, weights=args.weights)[inner]
            )
            if "BM3D" in outputs:
                outputs["BM3D"].append(_bm3d(degraded[inner], sigma))
        for method, stack in outputs.items():
            rows[method].append(split_error(np.stack(stack), case.clean[inner], case.rois["head"][inner]))
    print(f"{args.family}, noise {args.noise:g}, {args.draws} draws, in-head squared error in stored units (3 slabs)")
    print("| method | MSE | squared bias | variance | MSE flat tissue | MSE steepest 25 % of edges |")
    print("|---|---:|---:|---:|---:|---:|")
    for method, values in rows.items():
        mean = {k: np.mean([v[k] for v in values]) for k in values[0]}
        print(
            f"| {method} | {mean['mse']:.1f} | {mean['bias2']:.1f} | {mean['variance']:.1f} "
            f"| {mean['mse_flat']:.1f} | {mean['mse_edges']:.1f} |"
        )


if __name__ == "__main__":
    main()
