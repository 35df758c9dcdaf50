"""A small study with real images (the studies tests' world), read by its readers, for export and ROI tests."""

from __future__ import annotations

import numpy as np

from apps.studies.models import ReadingTask, TaskStatus
from apps.studies.services import reading
from tests.studies.conftest import World, build_world

__all__ = ["CLINICAL", "World", "build_world", "clinical_world", "read", "task_scores"]


def task_scores(task: ReadingTask, rng: np.random.Generator) -> dict[str, dict[str, int]]:
    """Scores for every panel and item, DL a little better, so that the analysis has an effect to find."""
    keys = list(task.study.items.values_list("key", flat=True))
    out = {}
    for panel in reading.panels_of(task):
        version = task.version or (task.left_version if panel == "A" else task.right_version)
        base = 3.4 if version == "dl" else 2.6
        out[panel] = {key: int(np.clip(np.rint(base + rng.normal(0, 0.9)), 1, 5)) for key in keys}
    return out


def read(world: World, submit_fraction: float = 1.0, partial: int = 0, seed: int = 0, readers=None) -> None:
    """Each reader (all, or those given) submits this fraction of their tasks; `partial` more tasks get some
    scores, unsubmitted."""
    rng = np.random.default_rng(seed)
    for reader in world.readers if readers is None else readers:
        tasks = list(ReadingTask.objects.filter(study=world.study, reader=reader).order_by("position"))
        cut = round(len(tasks) * submit_fraction)
        for task in tasks[:cut]:
            reading.submit(reader, task, task_scores(task, rng), 30.0 + rng.uniform(0, 60))
        for task in tasks[cut : cut + partial]:
            panel, values = next(iter(task_scores(task, rng).items()))
            reading.autosave(reader, task, panel, dict(list(values.items())[:3]))
    assert ReadingTask.objects.filter(study=world.study, status=TaskStatus.SUBMITTED).exists() or not submit_fraction


# Clinical values of the six cases of `clinical_world`: one age not entered, IDH and 1p/19q partly unknown.
CLINICAL = [  # age, sex, tumour type, WHO grade, IDH, 1p/19q
    (61, "M", "glioblastoma", 4, "wildtype", "intact"),
    (None, "F", "astrocytoma", 3, "mutant", "intact"),
    (44, "F", "oligodendroglioma", 2, "mutant", "codeleted"),
    (70, "M", "glioblastoma", 4, "wildtype", ""),
    (38, "M", "astrocytoma", 2, "mutant", "unknown"),
    (57, "F", "glioblastoma", 4, "", ""),
]


def clinical_world(only_first_reader: bool = False) -> World:
    """Six cases (two per site, T2W and FLAIR, two readers each) with `CLINICAL` entered, read by every reader or
    only by the first; no ROIs."""
    world = build_world(cases_per_site=2, sequences=("T2W", "FLAIR"), readers_per_case=2)
    for case, (age, sex, tumour, grade, idh, codeletion) in zip(world.cases, CLINICAL, strict=True):
        case.age, case.sex, case.tumour_type, case.who_grade = age, sex, tumour, grade
        case.idh_status, case.codeletion_1p19q = idh, codeletion
        case.save()
    read(world, readers=world.readers[:1] if only_first_reader else None)
    return world
