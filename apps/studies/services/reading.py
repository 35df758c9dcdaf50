"""What a reader does: worklist, open a task, autosave scores, submit, resume, compare calibration scores.

Every lookup starts from the reader, so a token that is not the caller's is simply not found (404 upstream).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from statistics import median

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from apps.accounts.access import is_reader
from apps.accounts.models import User
from apps.audit.timestamps import not_before, touch
from apps.imaging.models import Instance, Sequence
from apps.imaging.services.enhancement import held_dl_series
from apps.studies.models import (
    LIKERT_MAX,
    LIKERT_MIN,
    ReaderStudy,
    ReadingMode,
    ReadingTask,
    Score,
    ScoreAudit,
    StudyItem,
    StudyStatus,
    TaskPanel,
    TaskStatus,
)

VISIBLE_STATUSES = (StudyStatus.READING, StudyStatus.LOCKED)


class NotFound(Exception):
    """Not the caller's (or does not exist): answered as 404 so nothing is learned from the difference."""


class Locked(Exception):
    """The study is locked: scores can no longer change."""


class Finished(Locked):
    """The reader has submitted every task of the study: it is open to them for read-only review, and their scores
    stay as submitted (the study model has no revision option, so no change is taken after the last submit)."""


class InvalidScores(ValueError):
    def __init__(self, message: str, missing: list[str] | None = None):
        super().__init__(message)
        self.missing = missing or []


def reader_tasks(reader: User) -> QuerySet[ReadingTask]:
    """The only way to reach tasks for reading: the reader's own, in studies open to readers, showing no DL
    series whose residual check failed and is not accepted yet."""
    if not is_reader(reader):
        return ReadingTask.objects.none()
    return ReadingTask.objects.filter(reader=reader, study__status__in=VISIBLE_STATUSES).exclude(
        panels__series__in=held_dl_series()
    )


def get_task(reader: User, token: str) -> ReadingTask:
    try:
        return reader_tasks(reader).select_related("study").get(token=token)
    except ReadingTask.DoesNotExist as exc:
        raise NotFound from exc


def get_panel(reader: User, image_token: str) -> TaskPanel:
    try:
        return TaskPanel.objects.select_related("series").get(
            image_token=image_token, task__in=reader_tasks(reader)
        )
    except TaskPanel.DoesNotExist as exc:
        raise NotFound from exc


def stack(series_id: int) -> QuerySet[Instance]:
    """A series' instances in stack order; slice indexes in image URLs count in this order from 0."""
    return Instance.objects.filter(series_id=series_id).order_by("slice_location", "instance_number", "pk")


CALIBRATION_HELP = ("Calibration images come first and are read by every reader, so that all readers use the "
                    "scale alike; their scores are not analysed.")
READER_MODE_TEXT = {ReadingMode.SINGLE: "{n} images, one at a time", ReadingMode.PAIRED: "{n} pairs of images, side by side"}


@dataclass
class StudyProgress:
    study: ReaderStudy
    done: int = 0
    total: int = 0
    calibration: int = 0
    per_sequence: list[tuple[str, int, int]] = field(default_factory=list)
    name: str = ""

    @property
    def description(self) -> str:
        """What the reader reads, in words that tell one study from another and nothing about site or version."""
        sequences = ", ".join(label for label, _, _ in self.per_sequence)
        return f"{READER_MODE_TEXT[self.study.mode].format(n=self.total)}: {sequences}"

    @property
    def resume_url(self) -> str:
        return reverse("reading:resume", args=[self.study.token])

    @property
    def finished(self) -> bool:
        """Every task submitted: the worklist offers a read-only review instead of resuming."""
        return self.total > 0 and self.done == self.total


def worklist(reader: User) -> list[StudyProgress]:
    """The reader's studies with done/total overall and per sequence, each under a name of its own: studies that
    share a reader label (the default "Reading list") are numbered in the order they were made."""
    rows = (
        reader_tasks(reader)
        .values("study_id", "sequence")
        .annotate(total=Count("pk"), done=Count("pk", filter=Q(status=TaskStatus.SUBMITTED)),
                  calibration=Count("pk", filter=Q(calibration=True)))
    )
    studies = {s.pk: StudyProgress(s) for s in ReaderStudy.objects.filter(pk__in={r["study_id"] for r in rows})}
    labels = dict(Sequence.choices)
    for row in sorted(rows, key=lambda r: list(labels).index(r["sequence"])):
        progress = studies[row["study_id"]]
        progress.done += row["done"]
        progress.total += row["total"]
        progress.calibration += row["calibration"]
        progress.per_sequence.append((labels[row["sequence"]], row["done"], row["total"]))
    entries = sorted(studies.values(), key=lambda p: p.study.pk)
    shared = Counter(p.study.reader_label for p in entries)
    seen: Counter[str] = Counter()
    for entry in entries:
        label = entry.study.reader_label
        seen[label] += 1
        entry.name = f"{label} {seen[label]}" if shared[label] > 1 else label
    return entries


def resume_task(reader: User, study_token: str) -> ReadingTask:
    """Where the reader left off: the first task not yet submitted; once every task is submitted, the first task,
    where the read-only review starts."""
    tasks = reader_tasks(reader).filter(study__token=study_token).order_by("position")
    task = tasks.exclude(status=TaskStatus.SUBMITTED).first() or tasks.first()
    if task is None:
        raise NotFound
    return task


def task_url(task: ReadingTask | None) -> str | None:
    return reverse("reading:task", args=[task.token]) if task else None


def task_api_url(task: ReadingTask | None) -> str | None:
    return reverse("reading-api:task", args=[task.token]) if task else None


def mark_opened(task: ReadingTask) -> None:
    """Records when a reader first opened the task (time on task is reported by the viewer at submit).

    Only showing a task opens it (the page's open call, an autosave, a submit): fetching it does not, because the
    page prefetches the next task while the reader scores this one, and its start time and order of opening go
    to the exports.

    Not in a locked study: its reading data, and so its exports, no longer change (the lock is checked in the same
    statement, so a lock that lands while the task is being opened wins)."""
    if task.status == TaskStatus.PENDING and not task.study.is_locked:
        opened = ReadingTask.objects.filter(pk=task.pk, status=TaskStatus.PENDING).exclude(
            study__status=StudyStatus.LOCKED
        ).update(status=TaskStatus.OPENED, started_at=timezone.now())
        if opened:
            task.status = TaskStatus.OPENED


def saved_scores(task: ReadingTask, panels: list[str] | None = None) -> dict[str, dict[str, int]]:
    scores: dict[str, dict[str, int]] = {panel: {} for panel in (panels or panels_of(task))}
    for panel, key, value in task.scores.values_list("panel", "item__key", "value").order_by("panel", "item__order"):
        scores.setdefault(panel, {})[key] = value
    return scores


def panels_of(task: ReadingTask) -> list[str]:
    return list(task.panels.order_by("panel").values_list("panel", flat=True))


def _siblings(task: ReadingTask) -> QuerySet[ReadingTask]:
    """The reader's tasks of the task's study (the task itself came through `reader_tasks`, so no user query)."""
    return ReadingTask.objects.filter(reader_id=task.reader_id, study_id=task.study_id)


def has_finished(task: ReadingTask) -> bool:
    """Whether the task's reader has submitted every task of its study (then the study is theirs to review only)."""
    return not _siblings(task).exclude(status=TaskStatus.SUBMITTED).exists()


REVIEW_ONLY = ("You have scored every image of this study: it is open for read-only review, and your scores stay "
               "as submitted.")


def review_only(task: ReadingTask) -> bool:
    """A submitted task of a reader who has finished the study: shown for review, never changed (scores, ROIs)."""
    return task.status == TaskStatus.SUBMITTED and has_finished(task)


def _refuse_after_finishing(task: ReadingTask, changed: bool) -> None:
    """A change to a submitted task after the reader's last submit is refused (409): the review is read-only.
    Re-sending what is stored changes nothing and stays idempotent. Called inside the writing transaction, so the
    refused change is rolled back."""
    if changed and review_only(task):
        raise Finished(REVIEW_ONLY)


def next_task(task: ReadingTask) -> ReadingTask | None:
    return _siblings(task).filter(position__gt=task.position).order_by("position").first()


def task_payload(task: ReadingTask) -> dict:
    """The reading API's view of a task: nothing about site, case or version, only opaque URLs."""
    siblings = _siblings(task)
    following = next_task(task)
    prev_task = siblings.filter(position__lt=task.position).order_by("-position").first()
    rows = task.panels.order_by("panel").annotate(slices=Count("series__instances")).values_list(
        "panel", "image_token", "slices"
    )
    panels = [
        {"panel": panel, "image_urls": [reverse("reading:image", args=[token, i]) for i in range(slices)],
         "slices_url": reverse("reading:image-range", args=[token])}
        for panel, token, slices in rows
    ]
    submitted = task.status == TaskStatus.SUBMITTED
    return {
        "token": task.token,
        "position": task.position,
        "total": siblings.count(),
        "mode": task.study.mode,
        "sequence": task.sequence,  # the same for both versions of an image; picks the window presets
        "calibration": task.calibration,
        "locked": task.study.is_locked,
        "review": submitted and has_finished(task),
        "submitted": submitted,
        "items": [
            {"key": item.key, "label": item.label, "anchors": list(item.anchors)}
            for item in task.study.items.order_by("order", "pk")
        ],
        "panels": panels,
        "scores": saved_scores(task, [p["panel"] for p in panels]),
        "next_url": task_url(following),
        "next_task_api": task_api_url(following),
        "prev_url": task_url(prev_task),
        "worklist_url": reverse("reading:worklist"),
        "calibration_scores_url": (
            reverse("reading-api:calibration-scores", args=[task.token]) if task.calibration and submitted else None
        ),
    }


@dataclass
class _Sheet:
    """What a score write needs to know about a task, read once per request: panels, items, saved scores."""

    panels: list[str]
    items: dict[str, StudyItem]
    saved: dict[tuple[str, int], Score]

    @classmethod
    def of(cls, task: ReadingTask) -> "_Sheet":
        items = {item.key: item for item in task.study.items.order_by("order", "pk")}
        return cls(panels_of(task), items, {(s.panel, s.item_id): s for s in task.scores.all()})

    def scores(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {panel: {} for panel in self.panels}
        for item in self.items.values():
            for panel in self.panels:
                if (panel, item.pk) in self.saved:
                    result[panel][item.key] = self.saved[panel, item.pk].value
        return result

    def missing(self) -> list[str]:
        return [f"{panel}.{key}" for panel in self.panels for key, item in self.items.items()
                if (panel, item.pk) not in self.saved]


def _validated(sheet: _Sheet, panel: str, scores: object) -> dict[StudyItem, int]:
    if panel not in sheet.panels:
        raise InvalidScores(f"Unknown panel {panel!r}; this task has {', '.join(sheet.panels)}.")
    if not isinstance(scores, dict):
        raise InvalidScores("Scores must be an object of item key to value.")
    items = sheet.items
    checked = {}
    for key, value in scores.items():
        if key not in items:
            raise InvalidScores(f"Unknown item {key!r}.")
        if isinstance(value, bool) or not isinstance(value, int) or not LIKERT_MIN <= value <= LIKERT_MAX:
            raise InvalidScores(f"{key}: a score is a whole number from {LIKERT_MIN} to {LIKERT_MAX}.")
        checked[items[key]] = value
    return checked


def _write(task: ReadingTask, sheet: _Sheet, values: dict[str, dict[StudyItem, int]], user: User) -> bool:
    """Stores the values of every panel, auditing each change, in at most three statements whatever the number
    of panels and items; an unchanged value writes nothing. Returns whether any changed."""
    now = timezone.now()  # one clock reading for the scores and their audit entries (apps.audit.timestamps)
    created, changed = [], []
    for panel, scores in values.items():
        for item, value in scores.items():
            score = sheet.saved.get((panel, item.pk))
            if score is None:
                created.append(Score(task=task, panel=panel, item=item, value=value, created_at=now))
            elif score.value != value:
                changed.append((score, value))
    audits = []
    for score, value in changed:
        audits.append(ScoreAudit(score=score, changed_by=user, old_value=score.value, new_value=value))
        score.value = value
        touch(score, now)
        audits[-1].changed_at = score.updated_at
    if changed:
        Score.objects.bulk_update([score for score, _ in changed], ["value", "updated_at"])
    if created:
        created = Score.objects.bulk_create(created)
        audits += [ScoreAudit(score=s, changed_by=user, old_value=None, new_value=s.value, changed_at=s.created_at)
                   for s in created]
    if audits:
        ScoreAudit.objects.bulk_create(audits)
    sheet.saved.update({(s.panel, s.item_id): s for s in created})
    return bool(audits)


def _lock_task(reader: User, task: ReadingTask) -> ReadingTask:
    task = reader_tasks(reader).select_for_update().select_related("study").get(pk=task.pk)
    if task.study.is_locked:
        raise Locked("The study is locked; scores can no longer be changed.")
    return task


@transaction.atomic
def autosave(reader: User, task: ReadingTask, panel: str, scores: object) -> dict[str, dict[str, int]]:
    """Saves a partial set of scores for one panel; returns everything saved for the task."""
    task = _lock_task(reader, task)
    sheet = _Sheet.of(task)
    _refuse_after_finishing(task, _write(task, sheet, {panel: _validated(sheet, panel, scores)}, reader))
    mark_opened(task)
    return sheet.scores()


@transaction.atomic
def submit(reader: User, task: ReadingTask, scores: object, seconds_on_task: object) -> ReadingTask:
    """Saves the scores of every panel and marks the task submitted once all items are scored.

    Idempotent: re-sending the same scores changes nothing. A later submit with other scores is a revision:
    audited, and its time is added to `revision_seconds`.
    """
    task = _lock_task(reader, task)
    if not isinstance(scores, dict):
        raise InvalidScores("Scores must be an object of panel to scores.")
    seconds = _seconds(seconds_on_task)
    sheet = _Sheet.of(task)
    changed = _write(task, sheet, {panel: _validated(sheet, panel, values) for panel, values in scores.items()}, reader)
    _refuse_after_finishing(task, changed)
    missing = sheet.missing()
    if missing:
        raise InvalidScores("Score every item before submitting.", missing)
    now = timezone.now()
    if task.status != TaskStatus.SUBMITTED:
        task.status = TaskStatus.SUBMITTED
        task.started_at = task.started_at or now
        task.submitted_at = not_before(now, task.started_at)
        task.seconds_on_task = seconds
    elif changed:
        task.revision_seconds += seconds
    else:
        return task
    task.save(update_fields=["status", "started_at", "submitted_at", "seconds_on_task", "revision_seconds",
                             "updated_at"])
    return task


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 24 * 3600:
        raise InvalidScores("seconds_on_task must be a number of seconds.")
    return float(value)


def calibration_scores(reader: User, task: ReadingTask) -> dict:
    """Other readers' submitted scores of the same calibration image, mapped onto this reader's panels.

    Only after the reader submitted their own; readers are shown as neutral numbers, never by name or site.
    """
    if not (task.calibration and task.status == TaskStatus.SUBMITTED):
        raise NotFound
    mine = {p.series_id: p.panel for p in task.panels.all()}
    others = (
        TaskPanel.objects.filter(
            task__study_id=task.study_id, task__calibration=True, task__status=TaskStatus.SUBMITTED,
            series_id__in=mine,
        )
        .exclude(task__reader=reader)
        .order_by("task__reader_id", "panel")
    )
    by_reader: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: {p: {} for p in sorted(mine.values())})
    for panel in others.select_related("task"):
        for key, value in panel.task.scores.filter(panel=panel.panel).values_list("item__key", "value"):
            by_reader[panel.task.reader_id][mine[panel.series_id]][key] = value
    return {
        "scores": saved_scores(task),
        "others": [
            {"reader": f"Reader {n}", "scores": scores}
            for n, (_, scores) in enumerate(sorted(by_reader.items()), start=1)
        ],
        "median": _medians(list(by_reader.values())),
    }


def _medians(all_scores: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, float]]:
    values: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for scores in all_scores:
        for panel, items in scores.items():
            for key, value in items.items():
                values[panel][key].append(value)
    return {panel: {key: median(v) for key, v in items.items()} for panel, items in values.items()}
