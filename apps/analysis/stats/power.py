"""Power and sample size of a Likert reader study, by simulating whole studies from a pilot.

A pilot (scores in the long format of ``validation.SCORE_COLUMNS``: a study of this platform, a CSV, the reference
data) gives, per sequence x item, the parameters of the model the analysis fits (``clmm.fit_clmm``; no second
fitter)::

    logit P(Y <= j) = theta_j - (beta * dl + r_reader + b_site + b_patient + c_reader_case)

- ``theta``, ``beta`` (the DL effect, a log odds ratio) and the reader effects come from the pilot's CLMM with a
  reader x case random intercept nested in the patient (``fit_clmm`` with groups = reader x patient, clusters =
  patients): that fit's scale already has the reader's case-specific impression taken out of the logistic noise;
- the patient and the site variances split that fit's patient variance in the proportion of the planned model's
  fit (``fit_item``: ``(1 | site) + (1 | patient)``);
- new readers are drawn with ``r ~ N(0, sd_reader^2)``, ``sd_reader`` the spread of the pilot's reader effects;
- the reader x case impression ``c`` is shared by the two versions of one image in paired mode (read side by side),
  and drawn afresh for each version in single mode (read apart): the modes keep each score's distribution and
  differ only in how strongly a reader's two scores of one image agree.

A design (cases, readers, readers per case, mode, sites) is simulated ``n_studies`` times under an assumed DL
effect; each simulated study is analysed with the planned test of ``planned.PlanSpec`` (CLMM Wald test or Wilcoxon
signed-rank on case means, superiority or non-inferiority, alpha, Holm across the primary comparisons), and power
is the share of simulated studies whose planned test rejects every primary comparison, with its Monte-Carlo
standard error ``sqrt(p (1 - p) / n)``. Assumptions: cases spread evenly over the sites, readers given to cases in
rotation (case i: readers i*k .. i*k + k - 1 mod R; the cross-site rule does not enter the model), the primary
comparisons simulated independently of each other.

The Wilcoxon path is vectorised (scipy's ``wilcoxon`` along an axis, the very test ``planned`` runs, and a
vectorised Holm), about 0.1 s per thousand studies; the CLMM path fits every simulated study with
``planned.primary_analysis`` itself (30-60 ms a fit on the 2-core machine), so its simulation counts are bounded
(``MAX_CLMM_STUDIES`` per design, ``MAX_CLMM_FITS`` in all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from .clmm import clmm_table, fit_clmm, fit_item
from .planned import PlanSpec, primary_analysis
from .validation import validate_scores

MODES = ("single", "paired")
MAX_CASES = 2000
MAX_READERS = 50
MAX_DESIGNS = 60
MAX_STUDIES = 5000  # per design, Wilcoxon
MAX_CLMM_STUDIES = 200  # per design, CLMM
MAX_CLMM_FITS = 4000  # designs x studies x primary comparisons, CLMM
MIN_SITES = 1
MAX_SITES = 50


class PowerInputError(ValueError):
    """A design, grid or setting the simulation refuses, with every reason."""


@dataclass(frozen=True)
class PilotItem:
    """One sequence x item's parameters, on the latent logistic scale of the CLMM."""

    sequence: str
    item: str
    levels: tuple[int, ...]  # the score categories, lowest first
    thresholds: tuple[float, ...]
    dl_effect: float  # log odds ratio, DL vs conventional
    sd_reader: float
    sd_patient: float
    sd_site: float
    sd_reader_case: float
    n_cases: int
    n_readers: int
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.sequence, self.item


@dataclass(frozen=True)
class Design:
    """One point of the grid: how many cases, readers and readers per case, in which mode, over how many sites."""

    n_cases: int
    n_readers: int
    readers_per_case: int
    mode: str = "single"
    n_sites: int = 3


@dataclass
class PowerGrid:
    """What to simulate: the designs (their product), the planned test, the assumed effect and the counts."""

    cases: list[int]
    readers: list[int]
    readers_per_case: list[int]
    modes: list[str] = field(default_factory=lambda: ["single"])
    n_sites: int = 3
    n_studies: int = 500
    effect: float | None = None  # None: each comparison's pilot effect; otherwise this log odds ratio for all
    seed: int = 2026

    def designs(self) -> list[Design]:
        return [
            Design(c, r, k, m, self.n_sites)
            for m in self.modes
            for k in self.readers_per_case
            for r in self.readers
            for c in self.cases
            if k <= r
        ]


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


def estimate_item(block: pd.DataFrame) -> PilotItem:
    """The pilot parameters of one sequence x item (validated long-format scores of that one comparison).

    Raises PowerInputError when the pilot cannot give them (one version, too few patients or sites for a CLMM).
    """
    sequence, item = block["sequence"].iloc[0], block["item"].iloc[0]
    if block["version"].nunique() < 2:
        raise PowerInputError(f"{sequence} {item}: the pilot scored only one version")
    planned = fit_item(block)
    if not planned.converged or not np.isfinite(planned.coef["version_dl"]):
        raise PowerInputError(f"{sequence} {item}: the pilot's CLMM gives no estimate ({planned.note or 'no fit'})")
    levels = np.sort(block["score"].unique())
    y = np.searchsorted(levels, block["score"].to_numpy())
    readers = sorted(block["reader"].unique())
    columns = [(block["version"] == "dl").to_numpy(dtype=float)]
    columns += [(block["reader"] == reader).to_numpy(dtype=float) for reader in readers[1:]]
    patient = pd.factorize(block["patient_id"])[0]
    reader_case = pd.factorize(block["patient_id"].astype(str) + "\x1f" + block["reader"].astype(str))[0]
    names = ["version_dl", *[f"reader_{r}" for r in readers[1:]]]
    nested = fit_clmm(y, np.column_stack(columns), reader_case, patient, names)
    note = ""
    if nested.converged and np.isfinite(nested.coef["version_dl"]):
        fit, sd_reader_case = nested, nested.sd_group
        between = nested.sd_cluster**2
    else:
        fit, sd_reader_case = planned, 0.0
        between = planned.var_group + planned.var_cluster
        note = f"no reader x case variance ({nested.note or 'the nested fit did not converge'}); taken as 0"
    planned_total = planned.var_group + planned.var_cluster
    site_share = planned.var_cluster / planned_total if planned_total > 0 else 0.0
    reader_effects = np.array([0.0, *[fit.coef[f"reader_{r}"] for r in readers[1:]]])
    return PilotItem(
        sequence=str(sequence),
        item=str(item),
        levels=tuple(int(v) for v in levels),
        thresholds=tuple(float(t) for t in fit.thresholds),
        dl_effect=float(fit.coef["version_dl"]),
        sd_reader=_sd(reader_effects[np.isfinite(reader_effects)]),
        sd_patient=math.sqrt(between * (1.0 - site_share)),
        sd_site=math.sqrt(between * site_share),
        sd_reader_case=float(sd_reader_case),
        n_cases=int(block["case_id"].nunique()),
        n_readers=len(readers),
        note=note,
    )


def estimate_pilot(scores: pd.DataFrame, comparisons: list[tuple[str, str]]) -> list[PilotItem]:
    """Pilot parameters for each (sequence, item) in ``comparisons``; PowerInputError naming each one that fails."""
    scores = validate_scores(scores)
    pilots, problems = [], []
    for sequence, item in comparisons:
        block = scores[(scores["sequence"] == sequence) & (scores["item"] == item)]
        if block.empty:
            problems.append(f"{sequence} {item}: the pilot has no scores")
            continue
        try:
            pilots.append(estimate_item(block))
        except PowerInputError as exc:
            problems.append(str(exc))
    if problems:
        raise PowerInputError("The pilot cannot be used: " + "; ".join(problems) + ".")
    return pilots


def check_grid(grid: PowerGrid, spec: PlanSpec, n_comparisons: int) -> None:
    """PowerInputError with every reason when the grid is malformed or too large to simulate."""
    problems = []

    def counts(name: str, values: list, low: int, high: int) -> None:
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            problems.append(f"{name} must be a non-empty list of whole numbers")
        elif min(values) < low or max(values) > high:
            problems.append(f"{name} must lie between {low} and {high} (given {min(values)} to {max(values)})")

    counts("cases", grid.cases, 3, MAX_CASES)
    counts("readers", grid.readers, 1, MAX_READERS)
    counts("readers per case", grid.readers_per_case, 1, MAX_READERS)
    if not grid.modes or any(m not in MODES for m in grid.modes):
        problems.append(f"modes must be among {', '.join(MODES)}")
    if not (isinstance(grid.n_sites, int) and MIN_SITES <= grid.n_sites <= MAX_SITES):
        problems.append(f"sites must lie between {MIN_SITES} and {MAX_SITES}")
    limit = MAX_CLMM_STUDIES if spec.test == "clmm" else MAX_STUDIES
    if not (isinstance(grid.n_studies, int) and 10 <= grid.n_studies <= limit):
        problems.append(f"simulated studies per design must lie between 10 and {limit} for the {spec.test} test")
    if grid.effect is not None and not (isinstance(grid.effect, int | float) and abs(grid.effect) <= 10):
        problems.append("the assumed effect is a log odds ratio between -10 and 10")
    if not problems:
        designs = grid.designs()
        if not designs:
            problems.append("no design has readers per case <= readers")
        elif len(designs) > MAX_DESIGNS:
            problems.append(f"{len(designs)} designs; at most {MAX_DESIGNS}")
        elif spec.test == "clmm" and len(designs) * grid.n_studies * n_comparisons > MAX_CLMM_FITS:
            problems.append(
                f"{len(designs)} designs x {grid.n_studies} studies x {n_comparisons} comparisons = "
                f"{len(designs) * grid.n_studies * n_comparisons} CLMM fits; at most {MAX_CLMM_FITS} "
                "(fewer designs or studies, or the Wilcoxon test)"
            )
        if spec.test == "clmm" and grid.n_sites < 3:
            problems.append("the CLMM needs at least 3 sites")
    if problems:
        raise PowerInputError("The power grid " + "; ".join(problems) + ".")


def simulate_scores(pilot: PilotItem, design: Design, effect: float, n_studies: int, rng: np.random.Generator):
    """Scores of ``n_studies`` simulated studies, shape (studies, cases, readers per case, 2: conventional, DL),
    with the reader index of each (case, slot) and the site of each case."""
    n, k, r = design.n_cases, design.readers_per_case, design.n_readers
    reader_of = (np.arange(n)[:, None] * k + np.arange(k)[None, :]) % r
    site_of = np.arange(n) % design.n_sites
    shape = (n_studies, n, k, 2)
    eta = (
        effect * np.array([0.0, 1.0])[None, None, None, :]
        + (pilot.sd_reader * rng.standard_normal((n_studies, r)))[:, reader_of][..., None]
        + (pilot.sd_site * rng.standard_normal((n_studies, design.n_sites)))[:, site_of][:, :, None, None]
        + (pilot.sd_patient * rng.standard_normal((n_studies, n)))[:, :, None, None]
    )
    if design.mode == "paired":
        eta = eta + pilot.sd_reader_case * rng.standard_normal((n_studies, n, k, 1))
    else:
        eta = eta + pilot.sd_reader_case * rng.standard_normal(shape)
    latent = eta + rng.logistic(size=shape)
    category = np.searchsorted(np.asarray(pilot.thresholds), latent, side="left")
    return np.asarray(pilot.levels)[category], reader_of, site_of


def holm_rows(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (as ``paired.holm`` on each row); NaN stays NaN and is not
    counted in its row's family."""
    p = np.asarray(p, dtype=float)
    finite = np.isfinite(p)
    m = finite.sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(finite, p, np.inf), axis=-1)
    sorted_p = np.take_along_axis(p, order, axis=-1)
    rank = np.arange(p.shape[-1])
    adjusted = np.minimum(np.maximum.accumulate(np.nan_to_num((m - rank) * sorted_p, nan=0.0), axis=-1), 1.0)
    out = np.empty_like(p)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return np.where(finite, out, np.nan)


def wilcoxon_p(scores: np.ndarray, spec: PlanSpec) -> np.ndarray:
    """The planned Wilcoxon p of each simulated study (``planned._wilcoxon`` along the studies' axis)."""
    diff = scores[..., 1].mean(axis=2) - scores[..., 0].mean(axis=2)
    non_inferiority = spec.hypothesis == "non_inferiority"
    shifted = diff + spec.margin if non_inferiority else diff
    with np.errstate(invalid="ignore", divide="ignore"):
        return stats.wilcoxon(
            shifted, zero_method="wilcox", correction=True, method="approx",
            alternative="greater" if non_inferiority else "two-sided", axis=1,
        ).pvalue


def long_frame(pilot: PilotItem, scores: np.ndarray, reader_of: np.ndarray, site_of: np.ndarray) -> pd.DataFrame:
    """One simulated study (scores of shape (cases, readers per case, 2)) in the long format the analysis reads."""
    n, k, _ = scores.shape
    case = np.repeat(np.arange(n), k * 2)
    return pd.DataFrame({
        "case_id": [f"C{c}" for c in case],
        "patient_id": [f"P{c}" for c in case],
        "site": [f"S{s}" for s in site_of[case]],
        "reader": [f"R{r:02d}" for r in np.repeat(reader_of.ravel(), 2)],
        "sequence": pilot.sequence,
        "version": np.tile(["conventional", "dl"], n * k),
        "item": pilot.item,
        "score": scores.ravel(),
    })


def clmm_p(pilots: list[PilotItem], simulated: list[tuple], spec: PlanSpec, study: int) -> np.ndarray:
    """The planned CLMM p of each primary comparison in one simulated study, before the multiplicity correction
    (``primary_analysis`` with none: its Holm, statsmodels' ``multipletests``, runs ``gc.collect()`` on every call,
    80 ms here, more than the fit)."""
    frames = [long_frame(p, s[0][study], s[1], s[2]) for p, s in zip(pilots, simulated, strict=True)]
    scores = pd.concat(frames, ignore_index=True)
    table = primary_analysis(scores, clmm_table(scores), replace(spec, multiplicity="none"))
    found = table.set_index(["sequence", "item"])["p"]
    return np.array([found.get(p.key, np.nan) for p in pilots], dtype=float)


def planned_p(pilots: list[PilotItem], simulated: list[tuple], spec: PlanSpec) -> np.ndarray:
    """The planned test's adjusted p-values, shape (studies, primary comparisons); ``simulated`` holds one
    ``simulate_scores`` result per pilot."""
    if spec.test == "wilcoxon":
        raw = np.column_stack([wilcoxon_p(s[0], spec) for s in simulated])
    else:
        raw = np.vstack([clmm_p(pilots, simulated, spec, i) for i in range(simulated[0][0].shape[0])])
    return holm_rows(raw) if spec.multiplicity == "holm" else raw


@dataclass(frozen=True)
class DesignPower:
    design: Design
    n_studies: int
    rejections: int  # studies in which every primary comparison rejected
    per_comparison: tuple[int, ...]  # studies in which each comparison rejected

    @property
    def power(self) -> float:
        return self.rejections / self.n_studies

    @property
    def mc_se(self) -> float:
        return math.sqrt(self.power * (1.0 - self.power) / self.n_studies)


@dataclass(frozen=True)
class PowerCurves:
    """What a power analysis gives: ``power_table`` and ``pilot_table`` rows, and the test and grid behind them."""

    table: pd.DataFrame
    pilot: pd.DataFrame
    spec: PlanSpec
    grid: PowerGrid


POWER_COLUMNS = [
    "mode", "n_cases", "n_readers", "readers_per_case", "n_sites", "n_studies", "rejections", "power", "mc_se",
    "ci_low", "ci_high",
]


def design_power(
    pilots: list[PilotItem], design: Design, spec: PlanSpec, effect: float | None, n_studies: int,
    rng: np.random.Generator,
) -> DesignPower:
    """Simulate one design ``n_studies`` times and count the studies whose planned test rejects."""
    simulated = [
        simulate_scores(p, design, p.dl_effect if effect is None else effect, n_studies, rng) for p in pilots
    ]
    reject = np.nan_to_num(planned_p(pilots, simulated, spec), nan=1.0) < spec.alpha
    return DesignPower(design, n_studies, int(reject.all(axis=1).sum()), tuple(int(v) for v in reject.sum(axis=0)))


def power_grid(pilots: list[PilotItem], grid: PowerGrid, spec: PlanSpec, progress=None) -> list[DesignPower]:
    """Power of every design of the grid (checked first); ``progress(done, total)`` after each design."""
    check_grid(grid, spec, len(pilots))
    rng = np.random.default_rng(grid.seed)
    designs = grid.designs()
    results = []
    for done, design in enumerate(designs, start=1):
        results.append(design_power(pilots, design, spec, grid.effect, grid.n_studies, rng))
        if progress is not None:
            progress(done, len(designs))
    return results


def power_table(results: list[DesignPower], pilots: list[PilotItem]) -> pd.DataFrame:
    """One row per design: the power of the plan (every primary comparison rejects) with its Monte-Carlo SE and a
    95 % interval, then the power of each comparison alone (``power_<sequence>_<item>``)."""
    rows = []
    for r in results:
        d = r.design
        half = 1.96 * r.mc_se
        row = [d.mode, d.n_cases, d.n_readers, d.readers_per_case, d.n_sites, r.n_studies, r.rejections, r.power,
               r.mc_se, max(r.power - half, 0.0), min(r.power + half, 1.0)]
        rows.append(row + [count / r.n_studies for count in r.per_comparison])
    names = [f"power_{p.sequence}_{p.item}" for p in pilots]
    return pd.DataFrame(rows, columns=[*POWER_COLUMNS, *names])


def pilot_table(pilots: list[PilotItem]) -> pd.DataFrame:
    """The pilot's parameters, one row per comparison (thresholds joined by ';')."""
    return pd.DataFrame([
        {
            "sequence": p.sequence, "item": p.item, "dl_effect": p.dl_effect,
            "thresholds": ";".join(f"{t:.4f}" for t in p.thresholds), "sd_reader": p.sd_reader,
            "sd_patient": p.sd_patient, "sd_site": p.sd_site, "sd_reader_case": p.sd_reader_case,
            "n_cases": p.n_cases, "n_readers": p.n_readers, "note": p.note,
        }
        for p in pilots
    ])


def with_sd_reader_case(pilots: list[PilotItem], sd: float) -> list[PilotItem]:
    """The pilots with a reader x case SD the user sets instead of the pilot's."""
    return [replace(p, sd_reader_case=sd, note="reader x case SD set by the user") for p in pilots]
