"""De-identification evidence, recorded when an upload is stored: counts and codes, never an original value.

Kept apart from ``apps.imaging`` (linked by foreign keys to its uploads and series) so the evidence has its own
migrations and its own rules: a row here is written by the ingest service inside the transaction that stores the
series, so evidence exists exactly for what was stored.
"""

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
    action_counts = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["batch", "pk"]

    def __str__(self) -> str:
        return f"De-identification of series {self.series_id} in upload {self.batch_id}"
