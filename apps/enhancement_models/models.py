"""The registry of enhancement models: what may make a DL series, with its model card and input contract.

A registered model never changes: its file (kept with its sha256), name, version, card and contract are fixed
at registration, and a new file is a new version. Admins retire a model so that no new job uses it; the rows
stay, because every DL series names the model that made it (``imaging.EnhancementJob.model``).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from worker.enhance.contract import MAX_MATRIX, MAX_SLICES, MIN_MATRIX, InputContract

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
# "NAME@VERSION" names a registered model in READERSTUDY_ENHANCE_MODEL, so a name has no "@".
NAME_PATTERN = r"^[^@\s][^@]{0,99}$"


class Normalisation(models.TextChoices):
    P99 = "p99", "Divide by the series' 99th percentile before, multiply back after"
    NONE = "none", "None: the stored values as they are"


class Runtime(models.TextChoices):
    TORCH = "torch", "torch (the built-in CE U-Net)"
    ONNX = "onnx", "ONNX (onnxruntime)"


# Everything a job's provenance relies on; only the retirement fields may change after registration.
IMMUTABLE_FIELDS = (
    "name", "version", "runtime", "built_in", "file", "sha256", "size", "intended_use", "training_data",
    "licence", "slices", "normalisation", "max_matrix", "pad_multiple", "context_input", "check_report",
    "registered_by", "registered_at",
)


class EnhancementModel(models.Model):
    """One version of one enhancement model."""

    name = models.CharField(max_length=100, validators=[RegexValidator(NAME_PATTERN, "A name has no '@'.")])
    version = models.CharField(
        max_length=64,
        validators=[RegexValidator(VERSION_PATTERN, "Letters, digits and . _ + - (at most 64), e.g. 1.0.2.")],
    )
    runtime = models.CharField(max_length=8, choices=Runtime.choices, default=Runtime.ONNX)
    built_in = models.BooleanField(default=False, help_text="Ships with the platform: cannot be deleted or retired.")
    file = models.FileField(
        upload_to="enhancement-models/", max_length=255, blank=True,
        help_text="The ONNX file, in the platform's storage (empty for the built-in model, whose weights ship).",
    )
    sha256 = models.CharField(max_length=64, help_text="Of the file; checked again before every run.")
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    # Model card.
    intended_use = models.TextField()
    training_data = models.TextField()
    licence = models.CharField(max_length=200)
    # Input contract (worker.enhance.contract.InputContract).
    slices = models.PositiveSmallIntegerField(
        default=3, help_text=f"Neighbouring slices the model takes, the enhanced one in the middle (odd, 1-{MAX_SLICES})."
    )
    normalisation = models.CharField(max_length=8, choices=Normalisation.choices, default=Normalisation.P99)
    max_matrix = models.PositiveIntegerField(
        default=768, help_text=f"Largest in-plane matrix run whole; larger ones are tiled ({MIN_MATRIX}-{MAX_MATRIX})."
    )
    pad_multiple = models.PositiveSmallIntegerField(
        default=1, help_text="Height and width are padded to a multiple of this (e.g. 16 for a U-Net of 4 poolings)."
    )
    context_input = models.BooleanField(
        default=False, help_text="The model takes a second input, the 10 normalised acquisition parameters."
    )
    check_report = models.JSONField(
        default=dict, blank=True, help_text="What the run on the phantom series found when the model was registered."
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    registered_at = models.DateTimeField(auto_now_add=True)
    retired = models.BooleanField(default=False, help_text="No new job uses it; what it made keeps its provenance.")
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retired_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-built_in", "name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="one_model_per_name_and_version"),
            models.CheckConstraint(
                condition=models.Q(slices__in=list(range(1, MAX_SLICES + 1, 2))), name="model_slices_odd"
            ),
            models.CheckConstraint(
                condition=models.Q(normalisation__in=Normalisation.values), name="model_normalisation_known"
            ),
            models.CheckConstraint(
                condition=models.Q(max_matrix__gte=MIN_MATRIX, max_matrix__lte=MAX_MATRIX), name="model_max_matrix_range"
            ),
            models.CheckConstraint(
                condition=models.Q(built_in=True, runtime=Runtime.TORCH, retired=False)
                | (models.Q(built_in=False, runtime=Runtime.ONNX) & ~models.Q(file="")),
                name="model_built_in_or_onnx_file",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    def save(self, *args, **kwargs) -> None:
        self._refuse_changes()
        if self.built_in and self.retired:
            raise ValidationError("The built-in model cannot be retired.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.built_in:
            raise models.ProtectedError("The built-in model cannot be deleted.", {self})
        return super().delete(*args, **kwargs)

    @property
    def contract(self) -> InputContract:
        return InputContract(self.slices, self.normalisation, self.max_matrix, self.pad_multiple, self.context_input)

    def clean(self) -> None:
        super().clean()
        problems = self.contract.problems()
        if problems:
            raise ValidationError("; ".join(problems))
        self._refuse_changes()

    def _refuse_changes(self) -> None:
        """ValidationError naming the fields that differ from the stored row (none may, but retirement)."""
        if self._state.adding or self.pk is None:
            return
        attnames = [self._meta.get_field(name).attname for name in IMMUTABLE_FIELDS]
        stored = type(self).objects.filter(pk=self.pk).values(*attnames).first()
        if stored is None:
            return
        changed = [name for name, attname in zip(IMMUTABLE_FIELDS, attnames, strict=True)
                   if getattr(self, attname) != stored[attname]]  # a FieldFile compares by its name
        if changed:
            raise ValidationError(
                f"A registered model never changes ({', '.join(changed)}): register a new version instead."
            )
