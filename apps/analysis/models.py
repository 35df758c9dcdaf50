"""Export jobs and ROI measurements. Models hold data; exports.py and rois.py do the work."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from apps.audit.timestamps import CreatedAtField, UpdatedAtField, updated_not_before_created
from apps.imaging.models import Sequence
from apps.jobs.models import BackgroundJob


class ExportKind(models.TextChoices):
    LONG = "long", "Scores, one row per score"
    WIDE = "wide", "Scores, one row per reading task"
    ASSIGNMENT = "assignment", "Assignment and randomisation"
    PATIENTS = "patients", "Patient characteristics"
    ROIS = "rois", "ROI measurements"
    SCORE_AUDIT = "score_audit", "Score changes (audit trail)"
    BLINDING = "blinding", "Blinding question answers"
    REPORT = "report", "Analysis report (PDF)"


class ExportJob(BackgroundJob):
    """One export built by the worker into the default storage, downloaded by admins only."""

    task_name = "worker.exports.build_export"

    study = models.ForeignKey("studies.ReaderStudy", on_delete=models.CASCADE, related_name="export_jobs")
    kind = models.CharField(max_length=16, choices=ExportKind.choices)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    rows = models.PositiveIntegerField(default=0)
    file = models.FileField(max_length=255, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Export {self.pk} {self.kind} of study {self.study_id} ({self.status})"


class RoiLabel(models.TextChoices):
    S1 = "S1", "S1 (tissue 1)"
    S2 = "S2", "S2 (tissue 2)"
    BACKGROUND = "background", "Background"


class RoiMeasurement(models.Model):
    """An elliptical ROI drawn once and measured on both versions of one image at identical pixel coordinates.

    Geometry is in image pixel indices of the series' stack (slice 0 first, in the order the viewer shows;
    the centre of pixel (row r, column c) is at (r, c)). The statistics are of the stored pixel values after
    RescaleSlope/Intercept, never of screen pixels.
    """

    study = models.ForeignKey("studies.ReaderStudy", on_delete=models.CASCADE, related_name="roi_measurements")
    case = models.ForeignKey("imaging.Case", on_delete=models.PROTECT, related_name="roi_measurements")
    sequence = models.CharField(max_length=16, choices=Sequence.choices)
    label = models.CharField(max_length=16, choices=RoiLabel.choices)
    drawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    task = models.ForeignKey(
        "studies.ReadingTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The task it was drawn in.",
    )
    slice_index = models.PositiveIntegerField()
    center_row = models.FloatField()
    center_col = models.FloatField()
    radius_rows = models.FloatField(validators=[MinValueValidator(0.5)])
    radius_cols = models.FloatField(validators=[MinValueValidator(0.5)])
    conventional_series = models.ForeignKey("imaging.Series", on_delete=models.PROTECT, related_name="+")
    dl_series = models.ForeignKey("imaging.Series", on_delete=models.PROTECT, related_name="+")
    conventional_mean = models.FloatField()
    conventional_sd = models.FloatField()
    conventional_pixels = models.PositiveIntegerField()
    dl_mean = models.FloatField()
    dl_sd = models.FloatField()
    dl_pixels = models.PositiveIntegerField()
    created_at = CreatedAtField()
    updated_at = UpdatedAtField(help_text="Last redrawn; equals created_at until then.")

    class Meta:
        ordering = ["study", "case__code", "sequence", "label", "drawn_by"]
        constraints = [
            models.UniqueConstraint(fields=["task", "label"], name="one_roi_per_label_and_task"),
            updated_not_before_created("roi"),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.sequence} {self.label}"


class PlanTest(models.TextChoices):
    CLMM = "clmm", "CLMM: version term of the cumulative link mixed model"
    WILCOXON = "wilcoxon", "Wilcoxon signed-rank test on case means"


class PlanHypothesis(models.TextChoices):
    SUPERIORITY = "superiority", "Superiority (two-sided)"
    NON_INFERIORITY = "non_inferiority", "Non-inferiority (one-sided, with a margin)"


class PlanMultiplicity(models.TextChoices):
    HOLM = "holm", "Holm across the primary comparisons"
    NONE = "none", "None"


class AnalysisPlan(models.Model):
    """The study's statistical analysis plan, fixed by an admin before the study opens and frozen as it opens.

    Frozen: ``frozen_json`` is the canonical JSON of the plan (``apps.analysis.plan.canonical_json``), ``sha256``
    its hash and ``frozen_at`` the moment, all written once by ``plan.freeze_plan``; a frozen plan never changes.
    """

    study = models.OneToOneField("studies.ReaderStudy", on_delete=models.CASCADE, related_name="analysis_plan")
    primary_items = models.JSONField(default=list, help_text="Keys of the study's items tested as primary.")
    primary_sequences = models.JSONField(default=list, help_text="Sequences tested as primary.")
    test = models.CharField(max_length=16, choices=PlanTest.choices, default=PlanTest.CLMM)
    hypothesis = models.CharField(max_length=16, choices=PlanHypothesis.choices, default=PlanHypothesis.SUPERIORITY)
    margin = models.FloatField(
        null=True, blank=True,
        help_text="Non-inferiority margin > 0: a log odds ratio for the CLMM, score points of the case-mean "
                  "difference for Wilcoxon. Empty for superiority.",
    )
    alpha = models.FloatField(default=0.05, help_text="Significance level, 0 < alpha < 0.5.")
    multiplicity = models.CharField(max_length=8, choices=PlanMultiplicity.choices, default=PlanMultiplicity.HOLM)
    session_effect = models.BooleanField(
        default=False,
        help_text="A study read in 2 sessions: the CLMMs take the reading session as a fixed effect (order effect).",
    )
    created_at = CreatedAtField()
    updated_at = UpdatedAtField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    frozen_at = models.DateTimeField(null=True, blank=True, editable=False)
    frozen_json = models.TextField(blank=True, editable=False, help_text="The plan as hashed, canonical JSON.")
    sha256 = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        constraints = [
            updated_not_before_created("analysisplan"),
            models.CheckConstraint(
                condition=models.Q(alpha__gt=0, alpha__lt=0.5), name="analysisplan_alpha_in_range"
            ),
            models.CheckConstraint(
                condition=models.Q(hypothesis="superiority", margin__isnull=True)
                | models.Q(hypothesis="non_inferiority", margin__gt=0),
                name="analysisplan_margin_for_non_inferiority",
            ),
            models.CheckConstraint(
                condition=models.Q(frozen_at__isnull=True, sha256="", frozen_json="")
                | (models.Q(frozen_at__isnull=False) & ~models.Q(sha256="") & ~models.Q(frozen_json="")),
                name="analysisplan_frozen_whole",
            ),
        ]

    def __str__(self) -> str:
        state = f"locked {self.frozen_at:%Y-%m-%d %H:%M} UTC" if self.frozen_at else "draft"
        return f"Analysis plan of study {self.study_id} ({state})"

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None


class BlindingQuestion(models.Model):
    """The study asks each reader, after they submit a task's scores, which image they think is DL-enhanced.

    Its existence switches the question on; an admin adds it while the study is a draft (``blinding.enable``).
    """

    study = models.OneToOneField("studies.ReaderStudy", on_delete=models.CASCADE, related_name="blinding_question")
    created_at = CreatedAtField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    def __str__(self) -> str:
        return f"Blinding question of study {self.study_id}"


class BlindingAnswer(models.TextChoices):
    PANEL_A = "A", "Panel A (left)"
    PANEL_B = "B", "Panel B (right)"
    DL = "dl", "Yes, DL-enhanced"
    CONVENTIONAL = "conventional", "No, conventional"
    DONT_KNOW = "dont_know", "Don't know"
    SKIPPED = "skipped", "Not answered (the reader went on)"


class BlindingGuess(models.Model):
    """A reader's one answer to the blinding question of one submitted task; written once, never shown again."""

    task = models.OneToOneField("studies.ReadingTask", on_delete=models.CASCADE, related_name="blinding_guess")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    answer = models.CharField(max_length=16, choices=BlindingAnswer.choices)
    created_at = CreatedAtField()

    class Meta:
        ordering = ["task"]

    def __str__(self) -> str:
        return f"Blinding guess for task {self.task_id}"


class PowerAnalysisJob(BackgroundJob):
    """A power analysis with a study as pilot, simulated by the worker (``apps.analysis.power``).

    ``parameters`` holds the planned test and the grid as checked when the job was made; ``result`` the curves
    (``power``: one row per design with its Monte-Carlo SE; ``pilot``: the parameters estimated per comparison).
    """

    task_name = "worker.power.run_power_analysis"

    study = models.ForeignKey("studies.ReaderStudy", on_delete=models.CASCADE, related_name="power_analyses")
    parameters = models.JSONField(help_text="Primary comparisons, test, alpha, margin, grid, effect, seed.")
    designs = models.PositiveIntegerField(default=0, help_text="Designs in the grid.")
    designs_done = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    result = models.JSONField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Power analysis {self.pk} of study {self.study_id} ({self.status})"
