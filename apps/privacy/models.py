"""De-identification evidence, recorded when an upload is stored: counts and codes, never an original value.

Kept apart from ``apps.imaging`` (linked by foreign keys to its uploads and series) so the evidence has its own
migrations and its own rules: a row here is written by the ingest service inside the transaction that stores the
series, so evidence exists exactly for what was stored.
"""

from django.conf import settings
from django.db import models


class SeriesDeidentification(models.Model):
    """What de-identification did to the files of one series stored from one upload.

    ``action_counts`` maps an attribute tag ("00100010"; a private group as "0019FFFF") to {action: files}, with
    the actions of ``apps.imaging.deidentify.ACTION_LABELS``. Values are never recorded, only that an action was
    taken and how often.
    """

    batch = models.ForeignKey("imaging.UploadBatch", on_delete=models.CASCADE, related_name="deidentification_records")
    series = models.ForeignKey("imaging.Series", on_delete=models.CASCADE, related_name="deidentification_records")
    instances = models.PositiveIntegerField(help_text="Files of this upload stored into the series.")
    method_codes = models.JSONField(
        default=dict, help_text="Option code -> number of these instances that declare it (113100 on all)."
    )
    date_mode = models.CharField(max_length=16, help_text="'shift' (113107) or 'remove'.")
    table = models.CharField(max_length=100, help_text="The attribute-action table applied (source and version).")
    table_sha256 = models.CharField(max_length=64, help_text="sha256 of the table as applied (canonical JSON).")
    allow_list = models.CharField(
        max_length=100, blank=True, help_text="The deny-by-default allow-list applied (name and version); '' when off."
    )
    allow_list_sha256 = models.CharField(max_length=64, blank=True, help_text="sha256 of that allow-list.")
    action_counts = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["batch", "pk"]

    def __str__(self) -> str:
        return f"De-identification of series {self.series_id} in upload {self.batch_id}"


class SeriesTextCheck(models.Model):
    """The burned-in text check (OCR) of the images of one series stored from one upload: how many were checked,
    how many had text, by which engine, or why none could be checked. Never the text."""

    record = models.OneToOneField(SeriesDeidentification, on_delete=models.CASCADE, related_name="text_check")
    checked = models.PositiveIntegerField(default=0, help_text="Images read by OCR.")
    with_text = models.PositiveIntegerField(default=0, help_text="Images in which OCR found text.")
    engine = models.CharField(max_length=100, blank=True, help_text="e.g. 'tesseract 5.3.0 (pytesseract 0.3.13)'.")
    unavailable = models.CharField(
        max_length=200, blank=True, help_text="Why the images could not be checked (the series is held meanwhile)."
    )
    seconds = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"Text check of {self.record}: {self.with_text} of {self.checked} with text"


class FindingStatus(models.TextChoices):
    OPEN = "open", "Waiting for the coordinator"
    BLANKED = "blanked", "Boxes blanked into a new instance"
    REJECTED = "rejected", "Series rejected"
    DISMISSED = "dismissed", "No identifying text, confirmed by the coordinator"


class TextFinding(models.Model):
    """Text OCR found in the pixels of one stored image: its boxes (pixel rectangles) and what the coordinator did.

    The recognised words are never stored. Blanking replaces the instance by a new one (new SOP Instance UID, Clean
    Pixel Data 113101 declared); both UIDs are de-identified ones.
    """

    batch = models.ForeignKey("imaging.UploadBatch", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="text_findings")
    series = models.ForeignKey("imaging.Series", on_delete=models.CASCADE, related_name="text_findings")
    instance = models.ForeignKey("imaging.Instance", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="text_findings")
    sop_uid = models.CharField(max_length=64, help_text="The (de-identified) SOP Instance UID the text was found in.")
    boxes = models.JSONField(help_text="[[x, y, width, height, confidence], ...] in image pixels, row 0 at the top.")
    engine = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    blanked_sop_uid = models.CharField(max_length=64, blank=True, help_text="The new instance made by blanking.")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["series", "pk"]

    def __str__(self) -> str:
        return f"Text in {self.sop_uid} ({self.get_status_display()})"


class SeriesDefacing(models.Model):
    """The face and ears cut from a 3D head series at upload (Clean Recognizable Visual Features, 113102).

    ``mask`` holds the removed voxels (zlib of the packed bits, ``shape`` (Z, Y, X) along the slice normal) so that
    every DL version of the series gets exactly the same cut; no pixel value is kept.
    """

    series = models.OneToOneField("imaging.Series", on_delete=models.CASCADE, related_name="defacing")
    method = models.CharField(max_length=200)
    shape = models.JSONField(help_text="[slices, rows, columns] of the mask, slices along the normal.")
    mask = models.BinaryField()
    removed_voxels = models.PositiveBigIntegerField()
    face_plane = models.JSONField(help_text="[a, b, c]: removed where a*y + b*z + c > the buffer (LPS mm).")
    ear_planes = models.JSONField(help_text="[left, right]: removed where x is beyond them (LPS mm).")
    seconds = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Defacing of series {self.series_id}"
