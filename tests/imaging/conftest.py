"""Synthetic studies shared by the imaging tests: generated once per session, small, one per vendor site."""

from pathlib import Path

import pytest

from apps.imaging import synthetic


@pytest.fixture(scope="session")
def synthetic_studies(tmp_path_factory) -> dict[int, tuple[synthetic.SyntheticPatient, list[Path]]]:
    """Site index -> (patient, files): T2W 2D, FLAIR 2D and 3D T1W post-contrast at the default small shapes.

    Tests keep to the default shapes: the phantom caches its smoothed maps per voxel size.
    """
    root = tmp_path_factory.mktemp("synthetic")
    result = {}
    for site_index in range(len(synthetic.SITE_PROFILES)):
        patient = synthetic.make_patient(site_index, index=1, seed=11)
        files = synthetic.write_study(root / f"study{site_index}", patient, seed=11)
        result[site_index] = (patient, files)
    return result
