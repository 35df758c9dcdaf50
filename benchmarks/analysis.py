"""Benchmark of the full statistics analysis on a study of the paper's size.

Generates a study like the paper's (294 patients at three sites with 95/99/100 patients, readers
R1-R3 one per site reading only the other sites' cases, two readers per case, 3 sequences x
2 versions x 7 items = 24,696 scores, plus patients and ROI measurements), or loads a score CSV
with ``--scores``. Prints wall time per stage, the peak memory, and the ratio of the 21 CLMM fits
to a baseline measured in the same run: statsmodels ``OrderedModel`` fits of the same fixed
effects without random effects.

    .venv/bin/python benchmarks/analysis.py [--scores scores.csv --patients patients.csv] [--seed 7]
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
    print(f"peak traced Python/numpy memory during run_analysis: {peak_traced / 2**20:.1f} MiB")
    print(f"peak resident set size of the process: {max_rss_mib:.1f} MiB")
    print(f"all CLMM fits converged: {bool(result.clmm['converged'].all())}")


if __name__ == "__main__":
    main()
