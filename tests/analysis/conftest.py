"""Fixtures for the statistics tests: the shared R reference data and one analysis run over it."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from apps.analysis.stats import run_analysis, write_outputs


def stats_public_dir() -> Path:
    """``READERSTUDY_SHARED_DIR`` if set, else the ``shared`` folder beside the repository."""
    shared = os.environ.get("READERSTUDY_SHARED_DIR")
    base = Path(shared) if shared else Path(__file__).resolve().parents[2] / ".." / "shared"
    return base / "data" / "stats-public"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    folder = stats_public_dir()
    if not (folder / "scores.csv").is_file():
        pytest.skip(f"R reference data not found at {folder} (set READERSTUDY_SHARED_DIR)")
    return folder


@pytest.fixture(scope="session")
def written_outputs(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the full analysis once on the reference study and write it the way the product does."""
    scores = pd.read_csv(reference_dir / "scores.csv")
    patients = pd.read_csv(reference_dir / "patients.csv")
    out = tmp_path_factory.mktemp("analysis")
    write_outputs(run_analysis(scores, patients), out)
    return out
