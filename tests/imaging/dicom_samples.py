"""Synthetic studies for the imaging tests, written with the demo generator."""

from pathlib import Path

from apps.imaging import synthetic


def write_patient_study(folder: Path, seed: int, site_index: int = 0) -> tuple[Path, list[str]]:
    """Writes one patient's three series into `folder`; returns the folder and the planted identifiers."""
    patient = synthetic.make_patient(site_index=site_index, index=seed, seed=seed)
    synthetic.write_study(folder, patient, synthetic.SITE_PROFILES[site_index], seed=seed)
    return folder, synthetic.planted_phi_values(patient)
