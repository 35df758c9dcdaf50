"""A small study with real images (the studies tests' world), read by its readers, for export and ROI tests."""

from __future__ import annotations

import numpy as np

from apps.studies.models import ReadingTask, TaskStatus
from apps.studies.services import reading
from tests.studies.conftest import World, build_world

__all__ = ["World", "build_world", "read", "task_scores"]


def task_scores(task: ReadingTask, rng: np.random.Generator) -> dict[str, dict[str, int]]:
    """Scores for every panel and item, DL a little better, so that the analysis has an effect to find."""
    keys = list(task.study.items.values_list("key", flat=True))
    out = {}
    for panel in reading.panels_of(task):
        version = task.version or (task.left_version if panel == "A" else task.right_version)
        base = 3.4 if version == "dl" else 2.6
        out[panel] = {key: int(np.clip(np.rint(base + rng.normal(0, 0.9)), 1, 5)) for key in keys}
    return out


def read(world: World, submit_fraction: float = 1.0, partial: int = 0, seed: int = 0) -> None:
    """Each reader submits this fraction of their tasks; `partial` more tasks get some scores, unsubmitted."""
    rng = np.random.default_rng(seed)
    for reader in world.readers:
        tasks = list(ReadingTask.objects.filter(study=world.study, reader=reader).order_by("position"))
        cut = round(len(tasks) * submit_fraction)
        for task in tasks[:cut]:
            reading.submit(reader, task, task_scores(task, rng), 30.0 + rng.uniform(0, 60))
        for task in tasks[cut : cut + partial]:
            panel, values = next(iter(task_scores(task, rng).items()))
            reading.autosave(reader, task, panel, dict(list(values.items())[:3]))
    assert ReadingTask.objects.filter(study=world.study, status=TaskStatus.SUBMITTED).exists() or not submit_fraction
