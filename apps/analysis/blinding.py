"""The blinding-integrity question: after a reader submits a task's scores, which image do they think is DL?

Switched on per study by an admin while the study is a draft (a ``BlindingQuestion`` row). For each submitted,
non-calibration task of such a study the reader is asked once, and the answer is stored once and never shown again
(``question`` then answers ``ask: false``). The question and its answer never touch what the reader is shown: the
task, its images and its scores are served by the reading app as before, and nothing here answers whether a guess
was right. The analysis (``guesses_frame`` -> ``stats.blinding``) scores the guesses against the true versions.

Like the ROI endpoints, the reader's door to this lives in the analysis app, because the answer is analysis data
about the reading, not part of it.
"""

from __future__ import annotations

import pandas as pd
from django.db import IntegrityError, transaction

from apps.accounts.models import User
from apps.analysis.exports import reader_label
from apps.analysis.models import BlindingAnswer, BlindingGuess, BlindingQuestion
from apps.studies.models import ReaderStudy, ReadingMode, ReadingTask, StudyStatus, TaskStatus

PAIRED_QUESTION = "Which panel do you think is DL-enhanced?"
SINGLE_QUESTION = "Was this image DL-enhanced?"
PAIRED_CHOICES = [BlindingAnswer.PANEL_A, BlindingAnswer.PANEL_B, BlindingAnswer.DONT_KNOW]
SINGLE_CHOICES = [BlindingAnswer.DL, BlindingAnswer.CONVENTIONAL, BlindingAnswer.DONT_KNOW]


class BlindingError(Exception):
    """The question cannot be asked or answered now (not switched on, not submitted yet, answered already)."""


class BlindingLocked(BlindingError):
    """The study is no longer a draft: whether it asks the question is fixed."""


def enabled(study: ReaderStudy) -> bool:
    return BlindingQuestion.objects.filter(study=study).exists()


@transaction.atomic
def set_enabled(study: ReaderStudy, on: bool, user: User | None = None) -> bool:
    """Switch the question on or off while the study is a draft; BlindingLocked afterwards."""
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    if study.status != StudyStatus.DRAFT:
        raise BlindingLocked("Whether readers are asked the blinding question is fixed once the study has opened.")
    if on:
        BlindingQuestion.objects.get_or_create(study=study, defaults={"created_by": user})
    else:
        BlindingQuestion.objects.filter(study=study).delete()
    return on


def _choices(task: ReadingTask) -> list[BlindingAnswer]:
    return PAIRED_CHOICES if task.study.mode == ReadingMode.PAIRED else SINGLE_CHOICES


def question(task: ReadingTask) -> dict:
    """What the reading page may ask for this task (the caller's own task): the same for either version shown."""
    ask = (
        task.status == TaskStatus.SUBMITTED
        and not task.calibration
        and enabled(task.study)
        and not BlindingGuess.objects.filter(task=task).exists()
    )
    if not ask:
        return {"ask": False}
    return {
        "ask": True,
        "question": PAIRED_QUESTION if task.study.mode == ReadingMode.PAIRED else SINGLE_QUESTION,
        "choices": [{"value": c.value, "label": c.label} for c in _choices(task)],
        "skip": BlindingAnswer.SKIPPED.value,
    }


def answer(reader: User, task: ReadingTask, value: object) -> None:
    """Store the reader's one answer (or ``skipped``). ValueError for a choice the task does not offer;
    BlindingError when the question is not asked for this task or was answered already."""
    allowed = [c.value for c in _choices(task)] + [BlindingAnswer.SKIPPED.value]
    if value not in allowed:
        raise ValueError(f"answer must be one of {', '.join(allowed)}")
    if not question(task)["ask"]:
        raise BlindingError("The blinding question is not asked for this image (or was answered already).")
    try:
        with transaction.atomic():
            BlindingGuess.objects.create(task=task, reader=reader, answer=value)
    except IntegrityError as exc:  # a second answer racing the first
        raise BlindingError("The blinding question was answered already.") from exc


def outcome(guess: BlindingGuess) -> tuple[str, str]:
    """(arm, outcome) of a guess against the task's true versions."""
    task = guess.task
    if guess.answer in (BlindingAnswer.DONT_KNOW, BlindingAnswer.SKIPPED):
        result = str(guess.answer)
    elif task.version:  # single mode: the arm is the version shown
        result = "correct" if guess.answer == task.version else "incorrect"
    else:
        dl_panel = BlindingAnswer.PANEL_A if task.left_version == "dl" else BlindingAnswer.PANEL_B
        result = "correct" if guess.answer == dl_panel else "incorrect"
    return (task.version or "paired"), result


def guesses_frame(study: ReaderStudy) -> pd.DataFrame | None:
    """One row per question asked (``reader``, ``arm``, ``outcome``) for ``stats.blinding``; None when the study
    does not ask the question."""
    if not enabled(study):
        return None
    guesses = BlindingGuess.objects.filter(task__study=study, task__calibration=False).select_related("task", "reader")
    rows = [(reader_label(g.reader.pseudonym, g.reader.username), *outcome(g)) for g in guesses]
    return pd.DataFrame(rows, columns=["reader", "arm", "outcome"])
