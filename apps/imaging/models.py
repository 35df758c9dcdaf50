"""Cases, series and instances as stored after de-identification, and the jobs that produce them."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models

from apps.jobs.models import BackgroundJob, JobStatus

__all__ = ["JobStatus"]  # owned by apps.jobs; imported from here by older code

# The clinical values a case may hold: the model, the admin, the API, the metadata CSV and the database check the
# same ones. Age in whole years; an empty value (None for numbers) means not known.
AGE_MAX = 120
WHO_GRADES = (1, 2, 3, 4)


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"
    UNKNOWN = "", "Unknown"


IDH_CHOICES = [("mutant", "Mutant"), ("wildtype", "Wild type"), ("unknown", "Unknown")]
CODELETION_CHOICES = [("codeleted", "Codeleted"), ("intact", "Intact"), ("unknown", "Unknown")]


class Case(models.Model):
    """One patient of one site, known only by a pseudonymous case code.

    The original Patient ID is kept only as a keyed hash, so a re-upload finds its case without the identifier
    being stored.
    """

    code = models.CharField(max_length=32, unique=True)
    institution = models.ForeignKey("institutions.Institution", on_delete=models.PROTECT, related_name="cases")
    patient_key = models.CharField(max_length=64, help_text="Keyed hash of the original Patient ID.")
    date_shift_days = models.IntegerField(default=0)
    age = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(AGE_MAX)],
        help_text=f"Whole years, 0 to {AGE_MAX}; empty when not known.",
    )
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True)
    tumour_type = models.CharField(
        max_length=100, blank=True, help_text="As diagnosed (WHO 2021), e.g. glioblastoma, astrocytoma."
    )
    who_grade = models.PositiveSmallIntegerField(null=True, blank=True, choices=[(g, str(g)) for g in WHO_GRADES])
    idh_status = models.CharField(max_length=16, blank=True, choices=IDH_CHOICES)
    codeletion_1p19q = models.CharField(
        max_length=16,
        blank=True,
        verbose_name="1p/19q",
        choices=CODELETION_CHOICES,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "patient_key"], name="one_case_per_patient_per_site"),
            models.CheckConstraint(
                condition=models.Q(age__isnull=True) | models.Q(age__gte=0, age__lte=AGE_MAX), name="case_age_range"
            ),
            models.CheckConstraint(condition=models.Q(sex__in=Sex.values), name="case_sex_known"),
            models.CheckConstraint(
                condition=models.Q(who_grade__isnull=True) | models.Q(who_grade__in=WHO_GRADES),
                name="case_who_grade_known",
            ),
            models.CheckConstraint(
                condition=models.Q(idh_status__in=["", *(v for v, _ in IDH_CHOICES)]), name="case_idh_status_known"
            ),
            models.CheckConstraint(
                condition=models.Q(codeletion_1p19q__in=["", *(v for v, _ in CODELETION_CHOICES)]),
                name="case_codeletion_1p19q_known",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Sequence(models.TextChoices):
    T2W = "T2W", "T2-weighted"
    FLAIR = "FLAIR", "T2 FLAIR"
    T1W_POST = "T1W_POST", "T1-weighted post-contrast"
    OTHER = "OTHER", "Other"


class Version(models.TextChoices):
    CONVENTIONAL = "conventional", "Conventional"
    DL = "dl", "DL-enhanced"


class SeriesSource(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    ENHANCED = "enhanced", "Enhanced by the engine"
    VENDOR = "vendor", "Vendor-enhanced"


class SeriesStatus(models.TextChoices):
    READY = "ready", "Ready"
    HELD_BURNED_IN = "held_burned_in", "Held: burned-in annotation"
    HELD_VENDOR = "held_vendor", "Held: vendor-enhanced, waiting to be linked"
    REJECTED = "rejected", "Rejected by coordinator"


class Series(models.Model):
    """A de-identified series. A DL series names its conventional series and the source that made it: a registered
    model at a noise-reduction factor (the engine's output) or the vendor (an uploaded vendor-enhanced series), so a
    conventional series has at most one DL version per source (``services.dl_versions``)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="series")
    series_uid = models.CharField(max_length=64, unique=True)
    study_uid = models.CharField(max_length=64)
    sequence = models.CharField(max_length=16, choices=Sequence.choices, default=Sequence.OTHER)
    sequence_overridden = models.BooleanField(
        default=False, help_text="Set when a coordinator corrected the automatic classification."
    )
    version = models.CharField(max_length=16, choices=Version.choices, default=Version.CONVENTIONAL)
    source = models.CharField(max_length=16, choices=SeriesSource.choices, default=SeriesSource.UPLOADED)
    conventional = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="dl_versions",
        help_text="For a DL series: the conventional series it is a version of (empty while a vendor series is held).",
    )
    dl_model = models.ForeignKey(
        "enhancement_models.EnhancementModel", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="For a DL series the engine made: the registered model of its source.",
    )
    dl_factor = models.FloatField(
        null=True, blank=True, help_text="For a DL series the engine made: the noise-reduction factor of its source."
    )
    status = models.CharField(max_length=20, choices=SeriesStatus.choices, default=SeriesStatus.READY)
    hold_reason = models.CharField(
        max_length=300, blank=True,
        help_text="Why the series is held, in words for the coordinator (from the product's vocabulary, never header text).",
    )
    description = models.CharField(max_length=200, blank=True, help_text="De-identified Series Description.")
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    pixel_spacing = models.JSONField(default=list)
    slice_thickness = models.FloatField(null=True, blank=True)
    orientation = models.JSONField(default=list)
    acquisition = models.JSONField(
        default=dict, help_text="Acquisition parameters (field strength, TR, TE, TI, flip angle, 2D/3D)."
    )
    window_center = models.FloatField(
        null=True, blank=True, help_text="Display window from the whole volume, computed once when stored."
    )
    window_width = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case__code", "sequence", "version"]
        verbose_name_plural = "series"
        constraints = [
            # One DL version per source and conventional series; a rejected one no longer counts.
            models.UniqueConstraint(
                fields=["conventional", "dl_model", "dl_factor"],
                condition=models.Q(source=SeriesSource.ENHANCED) & ~models.Q(status=SeriesStatus.REJECTED),
                name="one_engine_dl_version_per_source",
            ),
            models.UniqueConstraint(
                fields=["conventional"],
                condition=models.Q(source=SeriesSource.VENDOR) & ~models.Q(status=SeriesStatus.REJECTED),
                name="one_vendor_dl_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case.code} {self.sequence} {self.version}"


class Instance(models.Model):
    """One de-identified DICOM file in the image store."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_uid = models.CharField(max_length=64, unique=True)
    instance_number = models.IntegerField(null=True, blank=True)
    slice_location = models.FloatField(
        default=0.0, help_text="Position along the slice normal, used to order the stack."
    )
    file = models.FileField(max_length=255)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["series", "slice_location", "instance_number"]

    def __str__(self) -> str:
        return self.sop_uid


class BatchOutcome(models.TextChoices):
    """What a finished batch (status done) came to: the worst thing the coordinator must know."""

    DONE = "done", "Done"
    DONE_WITH_HOLDS = "done_with_holds", "Done, some series held for review"
    DONE_WITH_REJECTIONS = "done_with_rejections", "Done, some files rejected"
    REJECTED = "rejected", "Nothing stored: every file rejected"


class UploadBatch(BackgroundJob):
    """An upload staged on disk, processed by the worker; its per-file outcomes are kept for the coordinator.

    Its lifecycle is every job's (apps.jobs); once done, ``outcome`` says what the batch came to."""

    task_name = "worker.ingestion.process_upload_batch"
    task_id_kwarg = "batch_id"

    institution = models.ForeignKey("institutions.Institution", on_delete=models.PROTECT, related_name="uploads")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    channel = models.CharField(max_length=16, default="web", help_text="web, api, command, c-store or stow-rs")
    vendor_output = models.BooleanField(
        default=False,
        help_text="The coordinator said the files are a vendor's DL output: each series is linked as the vendor DL "
        "version of its conventional series (or held for linking), whatever its header says.",
    )
    outcome = models.CharField(max_length=24, choices=BatchOutcome.choices, blank=True)
    file_count = models.PositiveIntegerField(default=0)
    processed_count = models.PositiveIntegerField(default=0)
    accepted_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    held_count = models.PositiveIntegerField(
        default=0,
        help_text="Stored files whose series is held from readers (e.g. burned-in annotation) until someone releases it.",
    )
    items = models.JSONField(
        default=list, blank=True,
        help_text="The neutral name each uploaded file or archive got, in upload order; never the original name.",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "upload batches"

    def __str__(self) -> str:
        return f"Upload {self.pk} ({self.get_status_display()})"

    @property
    def progress(self) -> float:
        return self.processed_count / self.file_count if self.file_count else 0.0

    @property
    def state(self) -> str:
        """The one word pages and the API show: the outcome once done, otherwise the job's status."""
        return self.outcome if self.status == JobStatus.DONE and self.outcome else self.status

    def get_state_display(self) -> str:
        return BatchOutcome(self.state).label if self.state in BatchOutcome.values else self.get_status_display()


class FileOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    DUPLICATE = "duplicate", "Already stored"
    REJECTED = "rejected", "Rejected"


class UploadFileResult(models.Model):
    """What happened to one file of an upload. `name` is the path inside the upload, never a header value."""

    batch = models.ForeignKey(UploadBatch, on_delete=models.CASCADE, related_name="results")
    name = models.CharField(max_length=500)
    outcome = models.CharField(max_length=16, choices=FileOutcome.choices)
    reason = models.CharField(max_length=40, blank=True)
    message = models.CharField(max_length=500, blank=True)
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["batch", "name"]
        constraints = [models.UniqueConstraint(fields=["batch", "name"], name="one_result_per_file")]

    def __str__(self) -> str:
        return f"{self.name}: {self.outcome}"

    @property
    def held(self) -> bool:
        """Stored, but its series is kept from readers until a coordinator releases it."""
        return self.outcome == FileOutcome.ACCEPTED and self.reason.startswith("held_")


class EnhancementJob(BackgroundJob):
    """DL enhancement of one conventional series. Its provenance lives here, never in a DICOM header: the
    registered model (name, version, sha256), the factor and run settings, the device and the runtime."""

    task_name = "worker.enhancement.enhance_series"

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="enhancement_jobs")
    output_series = models.OneToOneField(
        Series, null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_by"
    )
    model = models.ForeignKey(
        "enhancement_models.EnhancementModel", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs",
        help_text="The registered model that makes (or made) the DL series; empty: the deployment's default, "
                  "recorded when the job runs.",
    )
    model_version = models.CharField(max_length=64, blank=True)
    noise_reduction_factor = models.FloatField(
        help_text="Asked of the model; 1 is an identity copy. No default: every job says what it was run at."
    )
    device = models.CharField(max_length=32, blank=True)
    runtime = models.CharField(
        max_length=100, blank=True, help_text="What ran the model, e.g. 'onnxruntime 1.31.1 (CPUExecutionProvider)'."
    )
    run_settings = models.JSONField(
        default=dict, blank=True, help_text="The input contract and tile size the model was run with."
    )
    timings = models.JSONField(default=dict, blank=True)
    qa = models.JSONField(default=dict, blank=True, help_text="Residual statistics, conventional minus DL.")
    qa_flagged = models.BooleanField(
        default=False, help_text="The residual check failed: the DL series is not read until someone accepts it."
    )
    qa_accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    qa_accepted_at = models.DateTimeField(null=True, blank=True)
    replaces = models.ForeignKey(
        Series, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="An earlier DL series of the same input that this job re-makes in place (same UIDs).",
    )
    difference_image = models.FileField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Enhancement {self.pk} ({self.get_status_display()})"

    @property
    def held_for_review(self) -> bool:
        """Its DL series is kept from readers: the residual check failed and nobody has accepted it yet."""
        return self.qa_flagged and self.qa_accepted_at is None


def validate_ae_title(value: str) -> None:
    """DICOM PS3.5 AE title: 1 to 16 printable characters, no backslash (the value separator)."""
    title = value.strip()
    if not title or len(title) > 16 or "\\" in title or not title.isprintable():
        raise ValidationError("An AE title has 1 to 16 printable characters and no backslash.")


class DicomNode(models.Model):
    """A modality or PACS allowed to send by C-STORE; its calling AE title says which site the images belong to."""

    ae_title = models.CharField(
        max_length=16,
        unique=True,
        validators=[validate_ae_title],
        help_text="Calling AE title, as the sender sets it.",
    )
    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.PROTECT, related_name="dicom_nodes"
    )
    allowed_host = models.GenericIPAddressField(
        null=True, blank=True, help_text="When set, associations from any other address are rejected."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ae_title"]
        verbose_name = "DICOM node"

    def __str__(self) -> str:
        return self.ae_title
