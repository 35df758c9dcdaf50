"""The R reference data travel with the test suite, so that every clone runs the parity tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analysis import conftest

REPO = Path(__file__).resolve().parents[2]
NEEDED = conftest.REFERENCE_FILES


def test_reference_data_lie_inside_the_repository() -> None:
    folder = conftest.stats_public_dir()
    assert folder.resolve().is_relative_to(REPO), f"{folder} is outside the clone"
    for name in NEEDED:
        assert (folder / name).is_file(), name


def test_missing_reference_data_fail_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never a skip: a clone without the data must fail, not pass quietly."""
    monkeypatch.setattr(conftest, "STATS_PUBLIC", tmp_path / "absent")
    with pytest.raises(pytest.fail.Exception, match="R reference data"):
        conftest.require_reference_data()
