"""Benchmark of the power simulation (issue 14, item 2) and of what the power curve adds to a study's report.

On the public reference study (294 patients, 3 readers, paper design) as pilot, times in one run:
- the pilot estimate of one comparison (the planned CLMM and the CLMM with reader x case nested in patient);
- the Wilcoxon path: 24 designs (4 case counts x 3 reader counts x 2 modes) x 1000 simulated studies;
- the CLMM path: one design (40 cases, 3 readers, 2 per case) x 30 simulated studies, seconds per fit;
- the report's bounded curve (``apps.analysis.power.report_curves``) for a Wilcoxon and a CLMM plan, and the
  HTML and PDF report with and without Fig. 3, so the time the curve adds to the report is measured.

    DJANGO_SETTINGS_MODULE=readerstudy.settings .venv/bin/python benchmarks/power.py [--scores scores.csv]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readerstudy.settings")

import django  # noqa: E402

django.setup()

import pandas as pd  # noqa: E402

from apps.analysis import power  # noqa: E402
from apps.analysis.report import ReportMeta, render_html, render_pdf  # noqa: E402
from apps.analysis.stats import power as sim  # noqa: E402
from apps.analysis.stats import run_analysis  # noqa: E402
from apps.analysis.stats.planned import PlanSpec  # noqa: E402
from benchmarks.machine import describe  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "analysis" / "data" / "stats-public" / "scores.csv"


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    value = func(*args, **kwargs)
    return value, time.perf_counter() - start


def spec(test: str) -> PlanSpec:
    return PlanSpec(sequences=("T2W",), items=("overall_quality",), test=test, hypothesis="superiority", alpha=0.05,
                    multiplicity="holm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=Path, default=REFERENCE)
    args = parser.parse_args()
    print(describe())
    scores = pd.read_csv(args.scores)
    pilots, seconds = timed(sim.estimate_pilot, scores, [("T2W", "overall_quality")])
    print(f"pilot estimate, 1 comparison ({len(scores[scores['item'] == 'overall_quality']) // 3} scores): "
          f"{seconds:.2f} s")

    grid = sim.PowerGrid(cases=[20, 40, 80, 160], readers=[2, 3, 4], readers_per_case=[2],
                         modes=["single", "paired"], n_studies=1000, effect=0.5)
    _, seconds = timed(sim.power_grid, pilots, grid, spec("wilcoxon"))
    studies = len(grid.designs()) * grid.n_studies
    print(f"Wilcoxon path: {len(grid.designs())} designs x {grid.n_studies} studies = {studies} studies in "
          f"{seconds:.2f} s ({studies / seconds:.0f} studies/s)")

    grid = sim.PowerGrid(cases=[40], readers=[3], readers_per_case=[2], n_studies=30, effect=0.5)
    _, seconds = timed(sim.power_grid, pilots, grid, spec("clmm"))
    print(f"CLMM path: 1 design (40 cases, 3 readers, 2 per case) x 30 studies in {seconds:.2f} s "
          f"({seconds / 30 * 1000:.0f} ms a fit)")

    study = SimpleNamespace(sequences=["T2W", "FLAIR", "T1W_POST"], mode="single", seed=2026)
    result = run_analysis(scores)
    for test in ("wilcoxon", "clmm"):
        curves, seconds = timed(power.report_curves, study, scores, spec(test), 3)
        print(f"report curve, {test} plan: {len(curves.table)} designs x {curves.grid.n_studies} studies, "
              f"{seconds:.2f} s")
    demo = scores[scores["patient_id"].isin(
        scores.drop_duplicates("patient_id").groupby("site").head(3)["patient_id"])]  # the demo's 9 read cases
    try:
        curves, seconds = timed(power.report_curves, study, demo, None, 3)
        print(f"report curve, a demo-size pilot (9 cases): {seconds:.2f} s, power {curves.table['power'].round(2).tolist()}")
    except sim.PowerInputError as exc:
        print(f"report curve, a demo-size pilot (9 cases): not computed ({exc})")
    meta = ReportMeta(title="benchmark")
    _, html_without = timed(render_html, result, meta)
    _, pdf_without = timed(render_pdf, result, meta)
    meta.power, curve_seconds = timed(power.report_curves, study, scores, None, 3)
    _, html_with = timed(render_html, result, meta)
    _, pdf_with = timed(render_pdf, result, meta)
    print(f"report HTML: {html_without:.2f} s without Fig. 3, {html_with:.2f} s with it; PDF: {pdf_without:.2f} s "
          f"without, {pdf_with:.2f} s with; the curve itself (no plan: Wilcoxon) {curve_seconds:.2f} s")


if __name__ == "__main__":
    main()
