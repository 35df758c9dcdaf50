"""What a reader does: worklist, open a task, autosave scores, submit, resume, compare calibration scores.

Every lookup starts from the reader, so a token that is not the caller's is simply not found (404 upstream).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.urls import reverse

from apps.accounts.access import is_reader
from apps.accounts.models import User
from apps.audit.timestamps import not_before, now, touch
from apps.imaging.models import Instance, Sequence
from apps.imaging.services.enhancement import held_dl_series
from apps.studies import presets
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
    TaskRevision,
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


class SessionLocked(Exception):
    """The task belongs to a reading session of the reader that has not opened yet (answered 403 with the reason:
    the token is the reader's own, and when their next session opens is theirs to know)."""


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
    """The reader's task by its token; SessionLocked when its reading session has not opened for them yet."""
    try:
        task = reader_tasks(reader).select_related("study").get(token=token)
    except ReadingTask.DoesNotExist as exc:
        raise NotFound from exc
    require_session_open(task)
    return task


def get_panel(reader: User, image_token: str) -> TaskPanel:
    """A panel of the reader's task, only while the task's session is open: a locked session's images are not
    served either (404, as for any token that is not the caller's)."""
    try:
        panel = TaskPanel.objects.select_related("series", "task__study").get(
            image_token=image_token, task__in=reader_tasks(reader)
        )
    except TaskPanel.DoesNotExist as exc:
        raise NotFound from exc
    if not session_open(panel.task):
        raise NotFound
    return panel


@dataclass(frozen=True)
class ReadingSession:
    """One of a reader's reading sessions of a study: progress, when it ended, when it opens."""

    number: int
    of: int
    done: int
    total: int
    ended_at: datetime | None  # the last submit of the session, once every task of it is submitted
    opens_at: datetime | None  # session 1: None; later: the previous session's end plus the washout, once it ended
    is_open: bool

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done == self.total


def reader_sessions(reader_id: int, study: ReaderStudy, moment: datetime | None = None) -> list[ReadingSession]:
    """The reader's sessions of the study in order, as of `moment` (the product's clock by default).

    Session 1 is open; session k opens `washout_days` after the reader submitted the last task of session k-1, and
    not before. A study read in one session has one session, always open."""
    moment = moment or now()
    rows = (
        ReadingTask.objects.filter(study=study, reader_id=reader_id)
        .values("session")
        .annotate(total=Count("pk"), done=Count("pk", filter=Q(status=TaskStatus.SUBMITTED)),
                  last=Max("submitted_at"))
        .order_by("session")
    )
    sessions: list[ReadingSession] = []
    previous_end: datetime | None = None
    opens_at = None
    count = max(study.sessions, max((row["session"] for row in rows), default=1))
    by_number = {row["session"]: row for row in rows}
    for number in range(1, count + 1):
        row = by_number.get(number, {"total": 0, "done": 0, "last": None})
        if number == 1:
            is_open = True
        else:
            opens_at = previous_end + timedelta(days=study.washout_days) if previous_end else None
            is_open = opens_at is not None and moment >= opens_at
        ended = row["last"] if row["total"] and row["done"] == row["total"] else None
        sessions.append(ReadingSession(number, count, row["done"], row["total"], ended, opens_at, is_open))
        previous_end = ended if sessions[-1].is_open else None
    return sessions


def session_of(task: ReadingTask, moment: datetime | None = None) -> ReadingSession:
    return reader_sessions(task.reader_id, task.study, moment)[task.session - 1]


def session_open(task: ReadingTask) -> bool:
    return task.session == 1 or session_of(task).is_open


def locked_reason(session: ReadingSession, washout_days: int) -> str:
    """Why a session is closed, and when it opens, in the reader's words."""
    if session.opens_at is None:
        return (f"Session {session.number} of {session.of} opens {washout_days} days after you finish session "
                f"{session.number - 1}.")
    return (f"Session {session.number} of {session.of} opens on {opening_text(session.opens_at)}, "
            f"{washout_days} days after your session {session.number - 1} ended.")


def opening_text(moment: datetime) -> str:
    """A session's opening time as readers read it, in UTC (the product's time zone)."""
    return f"{moment:%A %-d %B %Y at %H:%M} UTC"


def next_session_note(task: ReadingTask) -> str:
    """After the last task of a session, when the reader's next session opens ("" when none is left)."""
    if not task.study.in_sessions:
        return ""
    sessions = reader_sessions(task.reader_id, task.study)
    later = [s for s in sessions[task.session:] if not s.is_open]
    if not later:
        return ""
    return f"You have finished session {task.session} of {task.study.sessions}. " + locked_reason(
        later[0], task.study.washout_days
    )


def require_session_open(task: ReadingTask) -> None:
    """SessionLocked, saying when it opens, for a task of a session that has not opened for its reader."""
    if task.session == 1:
        return
    session = session_of(task)
    if not session.is_open:
        raise SessionLocked(locked_reason(session, task.study.washout_days))


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
    sessions: list[ReadingSession] = field(default_factory=list)

    @property
    def current_session(self) -> ReadingSession | None:
        """Where the reader is: the first session not finished (None in a one-session study)."""
        if len(self.sessions) < 2:
            return None
        return next((s for s in self.sessions if not s.finished), self.sessions[-1])

    @property
    def waiting(self) -> str:
        """Why the reader cannot read on now (their next session has not opened), or "" when they can."""
        current = self.current_session
        if current is None or current.is_open:
            return ""
        return locked_reason(current, self.study.washout_days)

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
        if entry.study.in_sessions:
            entry.sessions = reader_sessions(reader.pk, entry.study)
    return entries


def resume_task(reader: User, study_token: str) -> ReadingTask:
    """Where the reader left off: the first task not yet submitted; once every task is submitted, the first task,
    where the read-only review starts. A task of a session not open yet is refused (SessionLocked) by `get_task`."""
    tasks = reader_tasks(reader).filter(study__token=study_token).order_by("position")
    task = tasks.exclude(status=TaskStatus.SUBMITTED).first() or tasks.first()
    if task is None:
        raise NotFound
    require_session_open(task)
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
        ).update(status=TaskStatus.OPENED, started_at=now())
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
    """Whether the task's reader has submitted every task of its reading session (a study read in one session:
    of the study); then that session is theirs to review only."""
    return not _siblings(task).filter(session=task.session).exclude(status=TaskStatus.SUBMITTED).exists()


REVIEW_ONLY = ("You have scored every image of this study: it is open for read-only review, and your scores stay "
               "as submitted.")
SESSION_REVIEW_ONLY = ("You have scored every image of this reading session: it is open for read-only review, and "
                       "your scores stay as submitted, so that the other session cannot change them.")


def review_only(task: ReadingTask) -> bool:
    """A submitted task of a reader who has finished its session (the study, when read in one session): shown for
    review, never changed (scores, ROIs), unless the reader opened it with an explicit Revise where the study allows
    it. Ending a session fixes its scores, or seeing an image's other version in the next session could change them."""
    return task.status == TaskStatus.SUBMITTED and has_finished(task) and not revising(task)


def revising(task: ReadingTask) -> bool:
    """Whether the reader opened this task for revision and has not submitted it again yet."""
    return task.revisions.filter(submitted_at__isnull=True).exists()


def revisable(task: ReadingTask) -> bool:
    """Whether a task in read-only review may be opened for revision: its study allows it (one session only)."""
    return task.study.allow_revision and not task.study.in_sessions and not task.study.is_locked


REVISION_OFF = "This study does not allow revising submitted scores: the review is read-only."
REVISION_NOT_NEEDED = ("Only a submitted image in the review after your last submit is revised this way; this one "
                       "can be changed as it is.")


@transaction.atomic
def revise(reader: User, task: ReadingTask) -> ReadingTask:
    """Opens a submitted task of the reader's finished study for revision, where the study allows it: recorded
    (TaskRevision: who, which task, when), after which its scores can change (each change audited with its old and
    new value) until it is submitted again. Finished (409) with the reason otherwise; idempotent while open."""
    task = _lock_task(reader, task)
    if revising(task):
        return task
    if not revisable(task):
        raise Finished(REVISION_OFF)
    if not review_only(task):
        raise Finished(REVISION_NOT_NEEDED)
    TaskRevision.objects.create(task=task, reader=reader, opened_at=now())
    return task


def _refuse_after_finishing(task: ReadingTask, changed: bool) -> None:
    """A change to a submitted task after the reader's last submit is refused (409): the review is read-only.
    Re-sending what is stored changes nothing and stays idempotent. Called inside the writing transaction, so the
    refused change is rolled back."""
    if changed and review_only(task):
        raise Finished(review_reason(task))


def review_reason(task: ReadingTask) -> str:
    """Why a task in review takes no change, in the words of its study's reading (one session, or two)."""
    return SESSION_REVIEW_ONLY if task.study.in_sessions else REVIEW_ONLY


def next_task(task: ReadingTask) -> ReadingTask | None:
    """The reader's next task, unless it belongs to a session that has not opened for them: at the end of a session
    the reading page ends and the worklist says when the next one opens."""
    following = _siblings(task).filter(position__gt=task.position).order_by("position").first()
    if following is not None and following.session != task.session and not session_open(following):
        return None
    return following


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
    review = submitted and review_only(task)
    return {
        "token": task.token,
        "position": task.position,
        "total": siblings.count(),
        "mode": task.study.mode,
        "sequence": task.sequence,  # the same for both versions of an image; picks the window presets
        "window_presets": presets.for_sequence(task.study.window_presets, task.sequence),  # None: built-in ones
        "calibration": task.calibration,
        "locked": task.study.is_locked,
        "review": review,
        "revisable": review and revisable(task),  # the review offers an explicit Revise (issue 12, defect 3)
        "revising": submitted and revising(task),
        "session": {"number": task.session, "of": task.study.sessions},
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
    moment = now()  # one clock reading for the scores and their audit entries (apps.audit.timestamps)
    created, changed = [], []
    for panel, scores in values.items():
        for item, value in scores.items():
            score = sheet.saved.get((panel, item.pk))
            if score is None:
                created.append(Score(task=task, panel=panel, item=item, value=value, created_at=moment))
            elif score.value != value:
                changed.append((score, value))
    audits = []
    for score, value in changed:
        audits.append(ScoreAudit(score=score, changed_by=user, old_value=score.value, new_value=value))
        score.value = value
        touch(score, moment)
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
    moment = now()
    if task.status == TaskStatus.SUBMITTED:  # only a submitted task is revised; the revision ends with its submit
        task.revisions.filter(submitted_at__isnull=True).update(submitted_at=moment)
    if task.status != TaskStatus.SUBMITTED:
        task.status = TaskStatus.SUBMITTED
        task.started_at = task.started_at or moment
        task.submitted_at = not_before(moment, task.started_at)
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
