"""Fixtures for the statistics tests: the R reference data and one analysis run over it.

``data/stats-public`` is a copy of the project's public reference data (a synthetic study of the paper's design and
R's results on it; its README says how they were made and the tolerances). It lives in the test suite so that every
clone runs the parity tests; a missing file fails them, never skips them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from apps.analysis.stats import run_analysis, write_outputs

STATS_PUBLIC = Path(__file__).resolve().parent / "data" / "stats-public"
REFERENCE_FILES = (
    "scores.csv",
    "patients.csv",
    "ref_means.csv",
    "ref_kappa.csv",
    "ref_clmm.csv",
    "ref_table1_tests.csv",
    "ref_paired.csv",
)


def stats_public_dir() -> Path:
    return STATS_PUBLIC


def require_reference_data() -> Path:
    """The reference folder, or a failure that names each missing file."""
    folder = stats_public_dir()
    missing = [name for name in REFERENCE_FILES if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"R reference data missing from {folder}: {', '.join(missing)}", pytrace=False)
    return folder


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return require_reference_data()


@pytest.fixture(scope="session")
def written_outputs(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the full analysis once on the reference study and write it the way the product does."""
    scores = pd.read_csv(reference_dir / "scores.csv")
    patients = pd.read_csv(reference_dir / "patients.csv")
    out = tmp_path_factory.mktemp("analysis")
    write_outputs(run_analysis(scores, patients), out)
    return out
