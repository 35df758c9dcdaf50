"""Reader studies: definition, stored assignment, reading tasks, scores and their audit trail.

Models hold data and invariants only; generating, scoring and locking live in `apps.studies.services`.
"""

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.audit.timestamps import CreatedAtField, UpdatedAtField, updated_not_before_created
from apps.imaging.models import Sequence, Version
from apps.studies.presets import HELP as PRESETS_HELP
from apps.studies.presets import validate_window_presets

LIKERT_MIN, LIKERT_MAX = 1, 5

QUALITY_ANCHORS = ["unacceptable", "poor", "acceptable", "good", "excellent or ideal"]
ARTIFACT_ANCHORS = [
    "unreadable artifact, images of non-diagnostic quality",
    "severe artifact, images degraded but interpretable",
    "moderate artifact with some, but not severe, effect on diagnostic quality",
    "minimal artifact, no effect on diagnostic quality",
    "no artifact",
]
# The seven items of the paper's qualitative evaluation, with its anchor wording; higher is always better.
DEFAULT_ITEMS = [
    ("overall_quality", "Overall image quality", QUALITY_ANCHORS),
    ("noise", "Noise", QUALITY_ANCHORS),
    ("gm_wm_differentiation", "Gray–white matter differentiation", QUALITY_ANCHORS),
    ("truncation_artifact", "Truncation artifact", ARTIFACT_ANCHORS),
    ("motion_artifact", "Motion artifact", ARTIFACT_ANCHORS),
    ("pulsation_artifact", "Pulsation artifact", ARTIFACT_ANCHORS),
    ("lesion_conspicuity", "Main lesion conspicuity",
     ["unable to see", "blurry but visualized", "acceptable", "good", "excellent"]),
]


def new_token() -> str:
    """Opaque identifier for reader-facing URLs: 22 URL-safe characters, the same length for every object."""
    return secrets.token_urlsafe(16)


def new_seed() -> int:
    return secrets.randbits(31)


def default_sequences() -> list[str]:
    return [Sequence.T2W, Sequence.FLAIR, Sequence.T1W_POST]


MAX_SESSIONS = 2  # each image has two versions, so a third session would have nothing of its own to show
MAX_WASHOUT_DAYS = 365


class ReadingMode(models.TextChoices):
    SINGLE = "single", "Single: each image on its own"
    PAIRED = "paired", "Paired: both versions side by side"


class DLSourceKind(models.TextChoices):
    DEFAULT = "default", "The deployment's default model and factor"
    MODEL = "model", "A registered model"
    VENDOR = "vendor", "Vendor series uploaded by the sites"


class StudyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    READING = "reading", "Reading"
    LOCKED = "locked", "Locked"


class Panel(models.TextChoices):
    A = "A", "A (left)"
    B = "B", "B (right)"


class ReaderStudy(models.Model):
    title = models.CharField(max_length=200, help_text="Seen by admins only.")
    reader_label = models.CharField(
        max_length=80, default="Reading list", help_text="What readers see; must not reveal site or version."
    )
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    sequences = models.JSONField(default=default_sequences, help_text="Sequences read in this study.")
    mode = models.CharField(max_length=8, choices=ReadingMode.choices, default=ReadingMode.SINGLE)
    readers_per_case = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1)])
    cross_site = models.BooleanField(default=True, help_text="Readers never read their own site's cases.")
    min_distance = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1)],
        help_text="Single mode: least number of positions between the two versions of one image.",
    )
    seed = models.BigIntegerField(default=new_seed, help_text="Randomisation seed of the assignment.")
    sessions = models.PositiveSmallIntegerField(
        "reading sessions", default=1,
        help_text="Single mode: 2 reads each image's two versions in different sessions, half of each reader's images "
                  "conventional first; 1 reads everything in one list. Fixed once reading has begun.",
    )
    washout_days = models.IntegerField(
        "washout (days)", default=0,
        help_text="With 2 sessions: days between the end of a reader's first session and the opening of their second "
                  f"(0 to {MAX_WASHOUT_DAYS}). Fixed once reading has begun.",
    )
    cases = models.ManyToManyField("imaging.Case", blank=True, related_name="reader_studies")
    calibration_cases = models.ManyToManyField(
        "imaging.Case", blank=True, related_name="calibration_in",
        help_text="Read first by every eligible reader; excluded from analysis.",
    )
    readers = models.ManyToManyField(settings.AUTH_USER_MODEL, through="StudyReader", related_name="reader_studies")
    dl_source = models.CharField(
        "DL source", max_length=8, choices=DLSourceKind.choices, default=DLSourceKind.DEFAULT,
        help_text="What made the DL versions this study reads. Fixed once reading has begun.",
    )
    dl_model = models.ForeignKey(
        "enhancement_models.EnhancementModel", null=True, blank=True, on_delete=models.PROTECT, related_name="studies",
        verbose_name="DL model",
        help_text="A registered model: required for the source 'a registered model'; for the default, filled in "
                  "with the deployment's model when the study is opened.",
    )
    dl_factor = models.FloatField(
        "noise-reduction factor", null=True, blank=True, validators=[MinValueValidator(1.0), MaxValueValidator(100.0)],
        help_text="The model's noise-reduction factor (1-100); empty: the deployment's (READERSTUDY_ENHANCE_FACTOR), "
                  "filled in when the study is opened.",
    )
    window_presets = models.JSONField(
        "window presets", default=dict, blank=True, validators=[validate_window_presets], help_text=PRESETS_HELP,
    )
    allow_revision = models.BooleanField(
        "readers may revise", default=False,
        help_text="After their last submit a reader may reopen a submitted image with an explicit Revise step, "
                  "recorded with who, which image and when (each score change keeps its old and new value). Off: "
                  "the review is read-only. Not with two reading sessions. Fixed once reading has begun.",
    )
    status = models.CharField(max_length=8, choices=StudyStatus.choices, default=StudyStatus.DRAFT)
    assignment_inputs = models.JSONField(
        default=list, blank=True, editable=False,
        help_text="Inputs of each assignment batch (seed, cases, readers, rules), to re-derive it.",
    )
    assignment_generated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "reader studies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(dl_source=DLSourceKind.DEFAULT)
                | models.Q(dl_source=DLSourceKind.MODEL, dl_model__isnull=False)
                | models.Q(dl_source=DLSourceKind.VENDOR, dl_model__isnull=True, dl_factor__isnull=True),
                name="study_dl_source_complete",
            ),
            models.CheckConstraint(
                condition=models.Q(sessions=1, washout_days=0)
                | models.Q(sessions=MAX_SESSIONS, mode=ReadingMode.SINGLE, washout_days__gte=0,
                           washout_days__lte=MAX_WASHOUT_DAYS),
                name="study_sessions_meaningful",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        super().clean()
        sequences = self.sequences
        if not (isinstance(sequences, list) and sequences and all(s in Sequence.values for s in sequences)):
            raise ValidationError({"sequences": f"Choose among {', '.join(Sequence.values)}."})
        if self.dl_source == DLSourceKind.MODEL and self.dl_model_id is None:
            raise ValidationError({"dl_model": "Choose the registered model whose DL versions this study reads."})
        if self.dl_source == DLSourceKind.VENDOR and (self.dl_model_id is not None or self.dl_factor is not None):
            raise ValidationError({"dl_model": "Vendor series come with no model or factor: leave both empty."})
        problem = session_problem(self.mode, self.sessions, self.washout_days)
        if problem:
            raise ValidationError({"sessions": problem})

    @property
    def in_sessions(self) -> bool:
        """Read in two sessions, each image's versions apart (single mode only)."""
        return self.sessions > 1

    @property
    def is_locked(self) -> bool:
        return self.status == StudyStatus.LOCKED


def session_problem(mode: str, sessions: object, washout_days: object) -> str | None:
    """Why a session count and washout make no sense for a study of this mode, or None when they do."""
    if isinstance(sessions, bool) or not isinstance(sessions, int) or sessions not in (1, MAX_SESSIONS):
        return (f"A study is read in 1 session or in {MAX_SESSIONS} (each image's two versions in different "
                f"sessions); {sessions!r} sessions have no meaning.")
    if isinstance(washout_days, bool) or not isinstance(washout_days, int):
        return "The washout is a whole number of days."
    if washout_days < 0:
        return f"The washout cannot be negative ({washout_days} days): give 0 to {MAX_WASHOUT_DAYS} days."
    if washout_days > MAX_WASHOUT_DAYS:
        return f"A washout of {washout_days} days is more than the {MAX_WASHOUT_DAYS} days allowed."
    if sessions > 1 and mode != ReadingMode.SINGLE:
        return ("Sessions separate an image's two versions, which paired mode shows side by side in one task: "
                "read a paired study in 1 session.")
    if sessions == 1 and washout_days:
        return "A washout separates two sessions: set 2 sessions, or a washout of 0 days."
    return None


class StudyItem(models.Model):
    """A Likert item: five anchors for the values 1..5, higher is better."""

    study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="items")
    key = models.SlugField(max_length=48)
    label = models.CharField(max_length=120)
    anchors = models.JSONField()
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["study", "order", "pk"]
        constraints = [models.UniqueConstraint(fields=["study", "key"], name="unique_item_key_per_study")]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        super().clean()
        anchors = self.anchors
        if not (isinstance(anchors, list) and len(anchors) == LIKERT_MAX and all(
            isinstance(a, str) and a.strip() for a in anchors
        )):
            raise ValidationError({"anchors": "Give five non-empty anchors, for the values 1 to 5."})


class StudyReader(models.Model):
    study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="memberships")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="study_memberships")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "reader__pseudonym", "reader__username"]
        constraints = [models.UniqueConstraint(fields=["study", "reader"], name="unique_reader_per_study")]

    def __str__(self) -> str:
        return f"{self.reader} in {self.study}"


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Not opened"
    OPENED = "opened", "Opened"
    SUBMITTED = "submitted", "Submitted"


class ReadingTask(models.Model):
    """One position in one reader's order. Single mode: one version; paired mode: left and right versions."""

    study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="tasks")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reading_tasks")
    position = models.PositiveIntegerField(help_text="1-based place in the reader's order.")
    case = models.ForeignKey("imaging.Case", on_delete=models.PROTECT, related_name="reading_tasks")
    sequence = models.CharField(max_length=16, choices=Sequence.choices)
    version = models.CharField(max_length=16, choices=Version.choices, blank=True)
    left_version = models.CharField(max_length=16, choices=Version.choices, blank=True)
    right_version = models.CharField(max_length=16, choices=Version.choices, blank=True)
    calibration = models.BooleanField(default=False)
    session = models.PositiveSmallIntegerField(
        default=1, help_text="Reading session (1 or 2); a reader's session 2 opens a washout after their session 1 ended."
    )
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    seconds_on_task = models.FloatField(default=0.0, help_text="Reported by the viewer at the first submit.")
    revision_seconds = models.FloatField(default=0.0, help_text="Time spent on later revisions.")
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study", "reader", "position"]
        constraints = [
            models.UniqueConstraint(fields=["study", "reader", "position"], name="one_task_per_position"),
            models.CheckConstraint(
                condition=(
                    models.Q(version__in=Version.values, left_version="", right_version="")
                    | (
                        models.Q(version="", left_version__in=Version.values, right_version__in=Version.values)
                        & ~models.Q(left_version=models.F("right_version"))
                    )
                ),
                name="task_single_or_paired",
            ),
            models.CheckConstraint(
                condition=models.Q(submitted_at__isnull=True) | models.Q(started_at__isnull=True)
                | models.Q(submitted_at__gte=models.F("started_at")),
                name="task_submitted_not_before_started",
            ),
            models.CheckConstraint(condition=models.Q(session__gte=1, session__lte=MAX_SESSIONS),
                                   name="task_session_in_range"),
        ]

    def __str__(self) -> str:
        return f"{self.study_id}/{self.reader_id}#{self.position}"

    @property
    def is_submitted(self) -> bool:
        return self.status == TaskStatus.SUBMITTED


class TaskPanel(models.Model):
    """What a task shows in one panel, behind an opaque token used in image URLs."""

    task = models.ForeignKey(ReadingTask, on_delete=models.CASCADE, related_name="panels")
    panel = models.CharField(max_length=1, choices=Panel.choices)
    series = models.ForeignKey("imaging.Series", on_delete=models.PROTECT, related_name="+")
    image_token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)

    class Meta:
        ordering = ["task", "panel"]
        constraints = [models.UniqueConstraint(fields=["task", "panel"], name="one_series_per_panel")]

    def __str__(self) -> str:
        return f"{self.task} {self.panel}"


class Score(models.Model):
    task = models.ForeignKey(ReadingTask, on_delete=models.CASCADE, related_name="scores")
    panel = models.CharField(max_length=1, choices=Panel.choices)
    item = models.ForeignKey(StudyItem, on_delete=models.PROTECT, related_name="scores")
    value = models.PositiveSmallIntegerField(validators=[MinValueValidator(LIKERT_MIN), MaxValueValidator(LIKERT_MAX)])
    created_at = CreatedAtField(help_text="First saved; the time of its first audit entry.")
    updated_at = UpdatedAtField(help_text="Last changed; equals created_at until the score is revised.")

    class Meta:
        ordering = ["task", "panel", "item__order"]
        constraints = [
            models.UniqueConstraint(fields=["task", "panel", "item"], name="one_score_per_task_panel_item"),
            models.CheckConstraint(
                condition=models.Q(value__gte=LIKERT_MIN, value__lte=LIKERT_MAX), name="likert_range"
            ),
            updated_not_before_created("score"),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.panel} {self.item_id}={self.value}"


class TaskRevision(models.Model):
    """A reader's explicit Revise of a submitted task, in a study that allows it, after their last submit: who, which
    task, when it was opened and when the revised scores were submitted (each score's audit keeps old and new)."""

    task = models.ForeignKey(ReadingTask, on_delete=models.PROTECT, related_name="revisions")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["task"], condition=models.Q(submitted_at__isnull=True),
                                    name="one_open_revision_per_task"),
        ]

    def __str__(self) -> str:
        return f"Revision of task {self.task_id} by {self.reader_id} at {self.opened_at:%Y-%m-%d %H:%M}"


class ScoreAudit(models.Model):
    """Every change of a score: who, when, old value (null when first set) and new value."""

    score = models.ForeignKey(Score, on_delete=models.PROTECT, related_name="audit")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    changed_at = CreatedAtField(help_text="The same instant as the score's created_at or updated_at it records.")
    old_value = models.PositiveSmallIntegerField(null=True, blank=True)
    new_value = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["score", "changed_at", "pk"]

    def __str__(self) -> str:
        return f"{self.score_id}: {self.old_value} -> {self.new_value}"
