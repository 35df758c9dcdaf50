"""A small score set of the paper's design (3 sites, 3 readers, 2 readers per case), fast to analyse."""

from __future__ import annotations

import numpy as np
import pandas as pd

READER_SITE = {"R1": "A", "R2": "B", "R3": "C"}
SEQUENCES = ("T2W", "FLAIR")
ITEMS = ("overall_quality", "noise")


def small_study(patients_per_site: int = 8, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(scores, patients, rois) with a clear DL effect, so every table and figure has something to show."""
    rng = np.random.default_rng(seed)
    scores, patients, rois = [], [], []
    for site in ("A", "B", "C"):
        for k in range(patients_per_site):
            patient = f"{site}{k:02d}"
            patients.append((patient, site, int(rng.integers(30, 80)), rng.choice(["F", "M"]),
                             rng.choice(["glioblastoma", "astrocytoma"]), int(rng.choice([2, 3, 4]))))
            for sequence in SEQUENCES:
                for version in ("conventional", "dl"):
                    noise = 10.0 if version == "conventional" else 4.0
                    for roi, mean, sd in (("S1", 400 + rng.normal(0, 20), 9), ("S2", 300 + rng.normal(0, 20), 9),
                                          ("background", 5.0, noise * rng.uniform(0.8, 1.2))):
                        rois.append((f"C-{patient}", sequence, version, roi, mean, sd))
                    for reader, reader_site in READER_SITE.items():
                        if reader_site == site:
                            continue
                        for item in ITEMS:
                            base = 3.0 + (0.9 if version == "dl" else 0.0) + rng.normal(0, 0.8)
                            score = int(np.clip(np.rint(base), 1, 5))
                            scores.append((f"C-{patient}", patient, site, reader, sequence, version, item, score))
    return (
        pd.DataFrame(scores, columns=["case_id", "patient_id", "site", "reader", "sequence", "version", "item",
                                      "score"]),
        pd.DataFrame(patients, columns=["patient_id", "site", "age", "sex", "tumor_type", "who_grade"]),
        pd.DataFrame(rois, columns=["case_id", "sequence", "version", "roi", "mean", "sd"]),
    )
