"""Power and sample size of a planned study from a pilot: settings checked, the simulation run (in a background
job, by the command, or bounded for the report), and its outputs (CSV of the curves and the pilot, PNG).

The statistics are in ``apps.analysis.stats.power``; this module reads a study's scores and plan, parses what an
admin or the command asks for, and stores what the job computed.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from django.db import transaction

from apps.accounts.models import User
from apps.analysis import exports, plan
from apps.analysis.models import AnalysisPlan, ExportKind, PowerAnalysisJob
from apps.analysis.report import power_figure
from apps.analysis.stats import power as sim
from apps.analysis.stats.planned import HYPOTHESES, MULTIPLICITY, TESTS, PlanSpec
from apps.analysis.stats.power import PowerCurves, PowerInputError
from apps.analysis.stats.validation import validate_scores
from apps.jobs import lifecycle
from apps.studies.models import ReaderStudy

GRID_FIELDS = ("cases", "readers", "readers_per_case", "modes", "n_sites", "n_studies", "effect", "seed")
PLAN_FIELDS = ("sequences", "items", "test", "hypothesis", "margin", "alpha", "multiplicity")
# The report's curve: the study's own design, few enough simulations to keep the report fast.
REPORT_CASES = (20, 40, 80, 160)
REPORT_WILCOXON_STUDIES = 200
REPORT_CLMM_STUDIES = 10
REPORT_CLMM_CASES = (20, 40, 80)


def study_scores(study: ReaderStudy) -> pd.DataFrame:
    """The study's submitted scores in the analysis' long format (calibration reads excluded)."""
    return exports.analysis_scores(exports.frame(study, ExportKind.LONG))


def default_settings(study: ReaderStudy) -> dict:
    """A form's starting values: the study's plan (locked, else drafted, else the Wilcoxon test on its first item
    and sequence), its mode and readers per case, and a grid around its size."""
    locked = plan.locked_plan(study)
    if locked is not None:
        spec = locked.spec
        values = {"sequences": list(spec.sequences), "items": list(spec.items), "test": spec.test,
                  "hypothesis": spec.hypothesis, "margin": spec.margin, "alpha": spec.alpha,
                  "multiplicity": spec.multiplicity}
    else:
        draft = AnalysisPlan.objects.filter(study=study).first()
        first_item = study.items.order_by("order").values_list("key", flat=True).first()
        values = {"sequences": study.sequences[:1], "items": [first_item] if first_item else [], "test": "wilcoxon",
                  "hypothesis": "superiority", "margin": None, "alpha": 0.05, "multiplicity": "holm"}
        if draft is not None and draft.primary_items and draft.primary_sequences:
            values.update(sequences=draft.primary_sequences, items=draft.primary_items, test=draft.test,
                          hypothesis=draft.hypothesis, margin=draft.margin, alpha=draft.alpha,
                          multiplicity=draft.multiplicity)
    readers = max(study.memberships.count(), 2)
    return {
        **values,
        "cases": list(REPORT_CASES),
        "readers": sorted({2, readers, readers + 2}),
        "readers_per_case": [min(study.readers_per_case, 2)],
        "modes": [study.mode],
        "n_sites": 3,
        "n_studies": 500 if values["test"] == "wilcoxon" else 50,
        "effect": None,
        "seed": study.seed % 2**31,
    }


def _int_list(value: object) -> object:
    """A list of whole numbers from a list or a comma-separated string; anything else is left for the check."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            return [int(p) for p in parts]
        except ValueError:
            return value
    return value


def _str_list(value: object) -> object:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return value


def _number(value: object) -> object:
    if isinstance(value, str):
        if value.strip() in ("", "pilot"):
            return None
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_settings(values: dict, scores: pd.DataFrame | None = None) -> tuple[PlanSpec, sim.PowerGrid]:
    """The planned test and the grid from an admin's or the command's values (lists or comma-separated text);
    PowerInputError with every reason. With the pilot's ``scores``, the primary comparisons must exist in it."""
    unknown = set(values) - set(GRID_FIELDS) - set(PLAN_FIELDS)
    if unknown:
        raise PowerInputError(f"Unknown setting {', '.join(sorted(unknown))}.")
    problems = []
    sequences, items = _str_list(values.get("sequences")), _str_list(values.get("items"))
    for name, listed in (("sequences", sequences), ("items", items)):
        if not (isinstance(listed, list) and listed and all(isinstance(v, str) for v in listed)):
            problems.append(f"name at least one primary {name[:-1]}")
    test, hypothesis = values.get("test"), values.get("hypothesis", "superiority")
    multiplicity = values.get("multiplicity", "holm")
    if test not in TESTS:
        problems.append(f"the test is one of {', '.join(TESTS)}")
    if hypothesis not in HYPOTHESES:
        problems.append(f"the hypothesis is one of {', '.join(HYPOTHESES)}")
    if multiplicity not in MULTIPLICITY:
        problems.append(f"the multiplicity correction is one of {', '.join(MULTIPLICITY)}")
    alpha, margin = _number(values.get("alpha", 0.05)), _number(values.get("margin"))
    if not (isinstance(alpha, int | float) and 0 < alpha < 0.5):
        problems.append("alpha lies between 0 and 0.5")
    if hypothesis == "non_inferiority" and not (isinstance(margin, int | float) and 0 < margin < 10):
        problems.append("a non-inferiority test needs a margin between 0 and 10")
    if hypothesis != "non_inferiority":
        margin = None
    effect = _number(values.get("effect"))
    if effect is not None and not (isinstance(effect, int | float) and math.isfinite(effect)):
        problems.append("the effect is 'pilot' or a log odds ratio")
    if not problems and scores is not None:
        present = set(zip(scores["sequence"], scores["item"], strict=True))
        missing = [f"{s} {i}" for s in sequences for i in items if (s, i) not in present]
        if missing:
            problems.append(f"the pilot has no scores of {', '.join(missing)}")
    if problems:
        raise PowerInputError("The power analysis " + "; ".join(problems) + ".")
    spec = PlanSpec(sequences=tuple(sequences), items=tuple(items), test=test, hypothesis=hypothesis,
                    alpha=float(alpha), multiplicity=multiplicity, margin=None if margin is None else float(margin))
    grid = sim.PowerGrid(
        cases=_int_list(values.get("cases")),
        readers=_int_list(values.get("readers")),
        readers_per_case=_int_list(values.get("readers_per_case", [2])),
        modes=_str_list(values.get("modes", ["single"])),
        n_sites=_as_int(values.get("n_sites", 3)),
        n_studies=_as_int(values.get("n_studies", 500)),
        effect=None if effect is None else float(effect),
        seed=_as_int(values.get("seed", 2026)),
    )
    sim.check_grid(grid, spec, len(spec.comparisons))
    if not (isinstance(grid.seed, int) and 0 <= grid.seed < 2**63):
        raise PowerInputError("The power analysis seed is a whole number >= 0.")
    return spec, grid


def _as_int(value: object) -> object:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def run(scores: pd.DataFrame, spec: PlanSpec, grid: sim.PowerGrid, progress=None,
        sd_reader_case: float | None = None) -> PowerCurves:
    """Estimate the pilot from ``scores`` and simulate the grid; PowerInputError when the pilot cannot be used."""
    pilots = sim.estimate_pilot(scores, spec.comparisons)
    if sd_reader_case is not None:
        pilots = sim.with_sd_reader_case(pilots, sd_reader_case)
    results = sim.power_grid(pilots, grid, spec, progress)
    return PowerCurves(sim.power_table(results, pilots), sim.pilot_table(pilots), spec, grid)


def write_outputs(curves: PowerCurves, out_dir: str | Path, title: str) -> list[Path]:
    """``power.csv`` (one row per design), ``pilot.csv`` (the pilot's parameters) and ``power.png`` (the curves)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "power.csv", out / "pilot.csv", out / "power.png"]
    curves.table.to_csv(paths[0], index=False)
    curves.pilot.to_csv(paths[1], index=False)
    power_figure(curves, title).savefig(paths[2], dpi=120)
    return paths


def start_power_analysis(study: ReaderStudy, values: dict, user: User | None) -> PowerAnalysisJob:
    """Check the settings against the study's scores (PowerInputError, nothing stored) and queue the job."""
    scores = study_scores(study)
    if scores.empty:
        raise PowerInputError("The study has no submitted scores yet: a pilot needs scores of both versions.")
    spec, grid = parse_settings(values, scores)
    parameters = {
        "sequences": list(spec.sequences), "items": list(spec.items), "test": spec.test,
        "hypothesis": spec.hypothesis, "margin": spec.margin, "alpha": spec.alpha, "multiplicity": spec.multiplicity,
        "cases": grid.cases, "readers": grid.readers, "readers_per_case": grid.readers_per_case, "modes": grid.modes,
        "n_sites": grid.n_sites, "n_studies": grid.n_studies, "effect": grid.effect, "seed": grid.seed,
    }
    with transaction.atomic():
        job = PowerAnalysisJob.objects.create(study=study, parameters=parameters, created_by=user,
                                              designs=len(grid.designs()))
        lifecycle.queue(job)
    return job


def run_power_job(job_id: int) -> None:
    """The job's simulation, its progress after each design, and its curves stored on the row. Safe to run twice:
    a finished or claimed job is left alone."""
    job = lifecycle.start(PowerAnalysisJob, job_id)
    if job is None:
        return
    spec, grid = parse_settings(job.parameters)

    def progress(done: int, total: int) -> None:
        PowerAnalysisJob.objects.filter(pk=job.pk).update(progress=done / total, designs_done=done)
        lifecycle.beat(PowerAnalysisJob, job.pk)

    curves = run(study_scores(job.study), spec, grid, progress)
    lifecycle.finish(job, progress=1.0, designs_done=len(curves.table),
                     result={"power": _records(curves.table), "pilot": _records(curves.pilot)})


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-safe rows: NaN becomes None."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")]


def job_curves(job: PowerAnalysisJob) -> PowerCurves | None:
    """The stored curves of a finished job, as the simulation returned them."""
    if not job.result:
        return None
    spec, grid = parse_settings(job.parameters)
    return PowerCurves(pd.DataFrame(job.result["power"]), pd.DataFrame(job.result["pilot"]), spec, grid)


def report_curves(study: ReaderStudy, scores: pd.DataFrame, spec: PlanSpec | None, readers: int) -> PowerCurves:
    """The report's power curve from the study itself as pilot: its plan's test (or the Wilcoxon test of overall
    quality, else its first item, on its first sequence scored), its pilot effect, its mode, and a bounded
    simulation (``REPORT_*``)."""
    scores = validate_scores(scores)
    if spec is None:
        items, scored = list(dict.fromkeys(scores["item"])), set(scores["sequence"])
        item = "overall_quality" if "overall_quality" in items else items[0]
        sequence = next((s for s in study.sequences if s in scored), scores["sequence"].iloc[0])
        spec = PlanSpec(sequences=(sequence,), items=(item,), test="wilcoxon", hypothesis="superiority", alpha=0.05,
                        multiplicity="holm")
    clmm = spec.test == "clmm"
    grid = sim.PowerGrid(
        cases=list(REPORT_CLMM_CASES if clmm else REPORT_CASES),
        readers=sorted({max(readers, 2), max(readers, 2) + 2}) if not clmm else [max(readers, 2)],
        readers_per_case=[2], modes=[study.mode], n_sites=3,
        n_studies=REPORT_CLMM_STUDIES if clmm else REPORT_WILCOXON_STUDIES, seed=study.seed % 2**31,
    )
    return run(scores, spec, grid)
