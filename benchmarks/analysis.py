"""Benchmark of the full statistics analysis on a study of the paper's size.

Generates a study like the paper's (294 patients at three sites with 95/99/100 patients, readers
R1-R3 one per site reading only the other sites' cases, two readers per case, 3 sequences x
2 versions x 7 items = 24,696 scores, plus patients and ROI measurements), or loads a score CSV
with ``--scores``. Prints wall time per stage, the peak memory, and the 21 CLMM fits timed in the same
run four ways: exact gradients (the product), central-difference gradients with one BLAS thread, the
path as it was before issue 14 (central differences, BLAS threads as the library sets them), and R's
``ordinal::clmm`` when ``Rscript`` with ``ordinal`` is installed (otherwise it says so and compares with
the figure recorded in issue 14: 65 s on this 2-core machine). It also times one exact gradient in numpy
against the same gradient by torch automatic differentiation, and statsmodels ``OrderedModel`` fits of the
same fixed effects without random effects as a floor.

    .venv/bin/python benchmarks/analysis.py [--scores scores.csv --patients patients.csv] [--seed 7]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.analysis.stats import clmm as clmm_module  # noqa: E402
from apps.analysis.stats import run_analysis  # noqa: E402
from apps.analysis.stats.validation import validate_scores  # noqa: E402
from benchmarks.machine import cpu_model  # noqa: E402

SITES = {"A": 95, "B": 99, "C": 100}
READER_SITE = {"R1": "A", "R2": "B", "R3": "C"}
SEQUENCES = ("T2W", "FLAIR", "T1W_POST")
ITEMS = (
    "overall_quality",
    "noise",
    "gm_wm_differentiation",
    "truncation_artifact",
    "motion_artifact",
    "pulsation_artifact",
    "lesion_conspicuity",
)


def generate_study(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Scores from a latent logistic model with DL, reader, site and patient effects; patients; ROIs."""
    rng = np.random.default_rng(seed)
    cuts = np.array([-4.0, -2.8, -1.2, 0.6])
    dl_effect = rng.normal(0.8, 0.5, (len(SEQUENCES), len(ITEMS)))
    reader_effect = {"R1": 0.0, "R2": 0.7, "R3": -0.2}
    site_effect = dict(zip(SITES, rng.normal(0, 0.2, len(SITES)), strict=True))
    score_rows, patient_rows, roi_rows = [], [], []
    for site, n_patients in SITES.items():
        readers = [r for r, s in READER_SITE.items() if s != site]
        for k in range(1, n_patients + 1):
            patient = f"{site}{k:03d}"
            case = f"C-{patient}"
            patient_rows.append(
                (
                    patient,
                    site,
                    int(rng.normal(55, 14)),
                    rng.choice(["F", "M"]),
                    rng.choice(["glioblastoma", "astrocytoma", "oligodendroglioma"]),
                    int(rng.choice([2, 3, 4])),
                )
            )
            u = rng.normal(0, 0.75, len(ITEMS))
            for s, sequence in enumerate(SEQUENCES):
                for version in ("conventional", "dl"):
                    gain = 3.5 if version == "dl" else 1.0
                    background_sd = rng.gamma(4.0, 1.0) / gain
                    s1, s2 = rng.normal(400, 60), rng.normal(300, 50)
                    for roi, mean, sd in (("S1", s1, 10), ("S2", s2, 10), ("background", 5.0, background_sd)):
                        roi_rows.append((case, sequence, version, roi, mean, sd))
                    for reader in readers:
                        eta = dl_effect[s] * (version == "dl") + reader_effect[reader] + site_effect[site] + u
                        latent = eta + rng.logistic(size=len(ITEMS))
                        scores = 1 + np.searchsorted(cuts, latent)
                        for item, score in zip(ITEMS, scores, strict=True):
                            score_rows.append(
                                (
                                    case,
                                    patient,
                                    site,
                                    reader,
                                    READER_SITE[reader],
                                    sequence,
                                    version,
                                    item,
                                    int(score),
                                )
                            )
    scores = pd.DataFrame(
        score_rows,
        columns=[
            "case_id",
            "patient_id",
            "site",
            "reader",
            "reader_site",
            "sequence",
            "version",
            "item",
            "score",
        ],
    )
    patients = pd.DataFrame(
        patient_rows, columns=["patient_id", "site", "age", "sex", "tumor_type", "who_grade"]
    )
    rois = pd.DataFrame(roi_rows, columns=["case_id", "sequence", "version", "roi", "mean", "sd"])
    return scores, patients, rois


def baseline_plain_fits(scores: pd.DataFrame) -> float:
    """Seconds for statsmodels OrderedModel fits of version + reader per sequence x item (no random effects)."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    clean = validate_scores(scores)
    start = time.perf_counter()
    for _, block in clean.groupby(["sequence", "item"], sort=False):
        x = np.column_stack(
            [block["version"] == "dl", block["reader"] == "R2", block["reader"] == "R3"]
        ).astype(float)
        OrderedModel(block["score"].to_numpy() - 1, x, distr="logit").fit(method="bfgs", disp=False)
    return time.perf_counter() - start


# Issue 14: R 4.2.2, ordinal::clmm, the 21 fits of a paper-size study on this 2-core machine, 2026-12-04.
R_RECORDED_SECONDS = 65.0
R_SCRIPT = """
suppressPackageStartupMessages(library(ordinal))
d <- read.csv(commandArgs(TRUE)[1], stringsAsFactors = TRUE)
d$version <- factor(d$version, levels = c("conventional", "dl"))
d$reader <- factor(d$reader)
blocks <- split(d, list(d$sequence, d$item), drop = TRUE)
elapsed <- system.time(for (b in blocks) {
  b$score <- ordered(b$score)
  clmm(score ~ version + reader + (1 | site) + (1 | patient_id), data = b, link = "logit")
})[["elapsed"]]
cat(length(blocks), elapsed, "\\n")
"""


def r_clmm_seconds(scores: pd.DataFrame) -> tuple[float | None, str]:
    """R's time for the same fits in this run, or None and why not."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None, "Rscript not found: R not run in this run"
    check = subprocess.run([rscript, "-e", "library(ordinal)"], capture_output=True, text=True)
    if check.returncode != 0:
        return None, "Rscript found, but not the R package 'ordinal': R not run in this run"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scores.csv"
        scores.to_csv(path, index=False)
        (Path(tmp) / "fit.R").write_text(R_SCRIPT)
        done = subprocess.run([rscript, str(Path(tmp) / "fit.R"), str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        return None, f"R failed: {done.stderr.strip()[-300:]}"
    n_fits, elapsed = done.stdout.split()
    version = subprocess.run([rscript, "--version"], capture_output=True, text=True)
    return float(elapsed), f"{(version.stdout or version.stderr).splitlines()[0]}, {n_fits} fits"


def clmm_seconds(scores: pd.DataFrame, path: str) -> tuple[float, pd.DataFrame]:
    """The 21 fits alone: ``exact``, ``numeric`` (one BLAS thread), or ``before`` (the path before issue 14:
    numeric gradients with BLAS threads left as the library sets them)."""
    clean = validate_scores(scores)
    if path == "before":
        unlimited = mock.patch.object(clmm_module, "threadpool_limits", lambda *a, **k: contextlib.nullcontext())
        gradient = "numeric"
    else:
        unlimited, gradient = contextlib.nullcontext(), path
    with unlimited:
        start = time.perf_counter()
        table = clmm_module.clmm_table(clean, gradient=gradient)
        return time.perf_counter() - start, table


def gradient_numpy_vs_torch(scores: pd.DataFrame, repeats: int = 200) -> tuple[float, float, float]:
    """Seconds per exact gradient of one item's Laplace likelihood at its optimum: numpy (analytic) and torch
    (reverse-mode automatic differentiation through one Newton step from the mode, which gives the implicit
    derivative of the mode exactly); and their largest difference."""
    import torch

    torch.set_num_threads(1)
    block = validate_scores(scores)
    block = block[(block["sequence"] == block["sequence"].iloc[0]) & (block["item"] == block["item"].iloc[0])]
    fit = clmm_module.fit_item(block)
    levels = np.sort(block["score"].unique())
    y = np.searchsorted(levels, block["score"].to_numpy())
    readers = sorted(block["reader"].unique())
    x = np.column_stack([block["version"] == "dl", *[block["reader"] == r for r in readers[1:]]]).astype(float)
    group = pd.factorize(block["patient_id"])[0]
    cluster_of_group = np.full(group.max() + 1, -1)
    cluster_of_group[group] = pd.factorize(block["site"])[0]
    model = clmm_module._NestedLaplace(y, x, group, cluster_of_group)
    theta, beta = fit.thresholds, np.array(list(fit.coef.values()))
    sds = np.array([fit.sd_group, fit.sd_cluster])

    ty, tx = torch.from_numpy(y), torch.from_numpy(x)
    tg, tc = torch.from_numpy(group), torch.from_numpy(cluster_of_group[group])
    tcog = torch.from_numpy(cluster_of_group)
    n_g, n_c = model.n_groups, model.n_clusters

    def by(index, values, n):
        return torch.zeros(n, dtype=values.dtype).index_add(0, index, values)

    def terms(th, be, sd, u_g, u_c):
        eta = tx @ be + sd[0] * u_g[tg] + sd[1] * u_c[tc]
        inf = torch.tensor([torch.inf], dtype=th.dtype)
        ext = torch.cat((-inf, th, inf))
        a, c = ext[ty + 1] - eta, ext[ty] - eta
        log_p = torch.nn.functional.logsigmoid(a) + torch.nn.functional.logsigmoid(-c) + torch.log(-torch.expm1(c - a))
        p = torch.exp(log_p)
        fa_cdf, fc_cdf = torch.sigmoid(a), torch.sigmoid(c)
        fa, fc = fa_cdf * (1 - fa_cdf), fc_cdf * (1 - fc_cdf)
        d1 = (fa - fc) / p
        d2 = d1 * d1 - (fa * (1 - 2 * fa_cdf) - fc * (1 - 2 * fc_cdf)) / p
        value = -log_p.sum() + 0.5 * (u_g @ u_g + u_c @ u_c)
        w_g = by(tg, d2, n_g)
        h_gg = sd[0] ** 2 * w_g + 1
        h_gc = sd[0] * sd[1] * w_g
        schur = sd[1] ** 2 * by(tc, d2, n_c) + 1 - by(tcog, h_gc * h_gc / h_gg, n_c)
        return value, d1, h_gg, h_gc, schur

    def torch_gradient() -> np.ndarray:
        u_g0, u_c0 = model._mode(theta, beta, sds[0], sds[1])[4:6]
        th = torch.tensor(theta, requires_grad=True)
        be = torch.tensor(beta, requires_grad=True)
        sd = torch.tensor(sds, requires_grad=True)
        u_g, u_c = torch.from_numpy(u_g0), torch.from_numpy(u_c0)
        _, d1, h_gg, h_gc, schur = terms(th, be, sd, u_g, u_c)
        grad_g = sd[0] * by(tg, d1, n_g) + u_g
        grad_c = sd[1] * by(tc, d1, n_c) + u_c
        step_c = (grad_c - by(tcog, h_gc * grad_g / h_gg, n_c)) / schur
        step_g = (grad_g - h_gc * step_c[tcog]) / h_gg
        value, _, h_gg, _, schur = terms(th, be, sd, u_g - step_g, u_c - step_c)
        nla = value + 0.5 * (torch.log(h_gg).sum() + torch.log(schur).sum())
        nla.backward()
        return np.concatenate((th.grad.numpy(), be.grad.numpy(), sd.grad.numpy()))

    exact = model.nla_grad(theta, beta, sds[0], sds[1])[1]
    difference = float(np.abs(torch_gradient() - exact).max())
    timings = []
    for func in (lambda: model.nla_grad(theta, beta, sds[0], sds[1]), torch_gradient):
        func()
        start = time.perf_counter()
        for _ in range(repeats):
            func()
        timings.append((time.perf_counter() - start) / repeats)
    return timings[0], timings[1], difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=Path, help="score CSV to analyse instead of a generated study")
    parser.add_argument("--patients", type=Path, help="patient CSV (with --scores)")
    parser.add_argument("--rois", type=Path, help="ROI CSV (with --scores)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    if args.scores:
        scores = pd.read_csv(args.scores)
        patients = pd.read_csv(args.patients) if args.patients else None
        rois = pd.read_csv(args.rois) if args.rois else None
        source = str(args.scores)
    else:
        scores, patients, rois = generate_study(args.seed)
        source = f"generated (seed {args.seed})"

    start = time.perf_counter()
    result = run_analysis(scores, patients, rois)
    total = time.perf_counter() - start

    baseline = baseline_plain_fits(scores)
    exact_s, exact_table = clmm_seconds(scores, "exact")
    numeric_s, numeric_table = clmm_seconds(scores, "numeric")
    before_s, _ = clmm_seconds(scores, "before")
    r_seconds, r_note = r_clmm_seconds(scores)
    numpy_grad_s, torch_grad_s, grad_diff = gradient_numpy_vs_torch(scores)

    tracemalloc.start()
    run_analysis(scores, patients, rois)
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    n_fits = len(result.clmm)
    print(
        f"study: {source}: {len(scores)} scores, {scores['patient_id'].nunique()} patients, {n_fits} CLMM fits"
    )
    print(f"machine: {platform.machine()}, {cpu_model()}, {len(__import__('os').sched_getaffinity(0))} cores")
    print("stage            seconds")
    for stage, seconds in result.timings.items():
        print(f"{stage:<16} {seconds:8.3f}")
    print(f"{'total':<16} {total:8.3f}")
    print(f"per CLMM fit     {result.timings['clmm'] / n_fits:8.3f}")
    print(f"baseline: statsmodels OrderedModel, {n_fits} fits without random effects: {baseline:.3f} s")
    print(f"ratio CLMM (Laplace, 2 random intercepts) / baseline: {result.timings['clmm'] / baseline:.2f}")
    print(f"{n_fits} CLMM fits, same run:")
    print(f"  exact gradients (product)                         {exact_s:8.3f} s")
    print(f"  central-difference gradients, one BLAS thread     {numeric_s:8.3f} s  ({numeric_s / exact_s:.1f}x)")
    print(f"  before issue 14 (central differences, BLAS as set) {before_s:7.3f} s  ({before_s / exact_s:.1f}x)")
    diff = (exact_table["coef_version_dl"] - numeric_table["coef_version_dl"]).abs().max()
    print(f"  largest |coef exact - coef numeric|: {diff:.2e}")
    if r_seconds is not None:
        print(f"  R ordinal::clmm, same run ({r_note}): {r_seconds:.3f} s  ({r_seconds / exact_s:.1f}x slower)")
    else:
        print(f"  {r_note}; R's recorded figure (issue 14, not this run): {R_RECORDED_SECONDS:.0f} s "
              f"= {R_RECORDED_SECONDS / exact_s:.1f}x the exact-gradient time")
    print(f"one exact gradient at the optimum: numpy {numpy_grad_s * 1e3:.2f} ms, torch autograd "
          f"{torch_grad_s * 1e3:.2f} ms (1 thread), largest difference {grad_diff:.1e}")
    print(f"peak traced Python/numpy memory during run_analysis: {peak_traced / 2**20:.1f} MiB")
    print(f"peak resident set size of the process: {max_rss_mib:.1f} MiB")
    print(f"all CLMM fits converged: {bool(result.clmm['converged'].all())}")


if __name__ == "__main__":
    main()
