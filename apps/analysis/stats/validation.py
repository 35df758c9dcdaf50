"""Input checks shared by the analysis functions: fail early with a message that names the problem."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

SCORE_COLUMNS = ("case_id", "patient_id", "site", "reader", "sequence", "version", "item", "score")
PATIENT_COLUMNS = ("patient_id", "site", "age", "sex", "tumor_type", "who_grade")
OPTIONAL_PATIENT_COLUMNS = ("idh_status", "codeletion_1p19q")
ROI_COLUMNS = ("case_id", "sequence", "version", "roi", "mean", "sd")
ROI_LABELS = ("S1", "S2", "background")
VERSIONS = ("conventional", "dl")
SCORE_MIN, SCORE_MAX = 1, 5


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise ValueError if ``df`` is empty or lacks any of ``columns``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise ValueError(f"{what}: no rows")


def validate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Return a clean copy of a long score table (one row per score) or raise ValueError. An optional ``session``
    column (the reading session, a whole number from 1) is kept for the CLMM's session effect."""
    require_columns(scores, SCORE_COLUMNS, "scores")
    df = scores.loc[:, [*SCORE_COLUMNS, *(["session"] if "session" in scores.columns else [])]].copy()
    if "session" in df.columns:
        session = pd.to_numeric(df["session"], errors="coerce")
        if (session.isna() | (session % 1 != 0) | (session < 1)).any():
            raise ValueError("scores: session must be a whole number from 1 in every row")
        df["session"] = session.astype(int)
    key_cols = [c for c in SCORE_COLUMNS if c != "score"]
    if df[key_cols].isna().any().any():
        bad = [c for c in key_cols if df[c].isna().any()]
        raise ValueError(f"scores: empty values in column(s) {', '.join(bad)}")
    for col in key_cols:
        df[col] = df[col].astype(str)
    numeric = pd.to_numeric(df["score"], errors="coerce")
    invalid = numeric.isna() | (numeric % 1 != 0) | (numeric < SCORE_MIN) | (numeric > SCORE_MAX)
    if invalid.any():
        examples = ", ".join(repr(v) for v in df.loc[invalid, "score"].head(3))
        raise ValueError(
            f"scores: {int(invalid.sum())} score(s) not an integer in {SCORE_MIN}..{SCORE_MAX} (e.g. {examples})"
        )
    df["score"] = numeric.astype(int)
    unknown = sorted(set(df["version"]) - set(VERSIONS))
    if unknown:
        raise ValueError(f"scores: unknown version(s) {', '.join(unknown)}; expected {', '.join(VERSIONS)}")
    if df.duplicated(key_cols).any():
        raise ValueError("scores: the same reader scored the same case, sequence, version and item twice")
    sites_per_patient = df.groupby("patient_id")["site"].nunique()
    if (sites_per_patient > 1).any():
        raise ValueError(
            f"scores: patient(s) at more than one site: {', '.join(sites_per_patient[sites_per_patient > 1].index[:3])}"
        )
    return df


def validate_patients(patients: pd.DataFrame) -> pd.DataFrame:
    """Return a clean copy of the patient characteristics table or raise ValueError.

    A missing age (empty, NA) is data: Table 1 counts it. Text where an age should be is a mistake and refused.
    IDH status and 1p/19q codeletion are kept when the table has them.
    """
    require_columns(patients, PATIENT_COLUMNS, "patients")
    optional = [c for c in OPTIONAL_PATIENT_COLUMNS if c in patients.columns]
    df = patients.loc[:, [*PATIENT_COLUMNS, *optional]].copy()
    blank = df["age"].isna() | df["age"].astype(str).str.strip().isin({"", "NA"})
    age = pd.to_numeric(df["age"].where(~blank), errors="coerce")
    invalid = age.isna() & ~blank
    if invalid.any():
        examples = ", ".join(repr(v) for v in df.loc[invalid, "age"].head(3))
        raise ValueError(f"patients: age must be a number or left empty (e.g. {examples})")
    df["age"] = age.astype(float)
    if df["patient_id"].duplicated().any():
        raise ValueError("patients: duplicate patient_id")
    return df


def validate_rois(rois: pd.DataFrame) -> pd.DataFrame:
    """Return a clean copy of the ROI measurement table or raise ValueError.

    An SD of 0 is valid data (a denoiser may flatten the air): the ratios it would divide are "not estimable".
    ``pixel_count`` is optional; where given, it lets too small a noise ROI be recognised.
    """
    require_columns(rois, ROI_COLUMNS, "rois")
    columns = [*ROI_COLUMNS, "pixel_count"] if "pixel_count" in rois.columns else list(ROI_COLUMNS)
    df = rois.loc[:, columns].copy()
    for col in ("mean", "sd"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
        if df[col].isna().any():
            raise ValueError(f"rois: {col} must be a number in every row")
    if (df["sd"] < 0).any():
        raise ValueError("rois: sd must not be negative")
    if "pixel_count" in df.columns:
        df["pixel_count"] = pd.to_numeric(df["pixel_count"], errors="coerce")
    unknown = sorted(set(df["roi"]) - set(ROI_LABELS))
    if unknown:
        raise ValueError(f"rois: unknown roi label(s) {', '.join(unknown)}; expected {', '.join(ROI_LABELS)}")
    if df.duplicated(["case_id", "sequence", "version", "roi"]).any():
        raise ValueError("rois: more than one measurement for the same case, sequence, version and roi")
    return df
