from rest_framework import serializers

from apps.analysis.models import ExportKind, RoiLabel, RoiMeasurement
from apps.imaging.models import JobStatus


class ExportJobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ExportKind.choices)


class RoiSerializer(serializers.ModelSerializer):
    """What a reader sends and gets back: label and geometry only. No statistics, no series, no version."""

    label = serializers.ChoiceField(choices=RoiLabel.choices)
    slice_index = serializers.IntegerField(min_value=0)
    center_row = serializers.FloatField()
    center_col = serializers.FloatField()
    radius_rows = serializers.FloatField(min_value=0.5)
    radius_cols = serializers.FloatField(min_value=0.5)

    class Meta:
        model = RoiMeasurement
        fields = ["label", "slice_index", "center_row", "center_col", "radius_rows", "radius_cols"]


class ExportJobSerializer(serializers.Serializer):
    """An export job as the API answers it (`views.job_payload`); response only."""

    id = serializers.IntegerField()
    study = serializers.IntegerField(help_text="Id of the reader study.")
    kind = serializers.ChoiceField(choices=ExportKind.choices)
    status = serializers.ChoiceField(choices=JobStatus.choices)
    progress = serializers.FloatField(help_text="0 to 1.")
    rows = serializers.IntegerField(min_value=0)
    error = serializers.CharField(allow_blank=True)
    download_url = serializers.CharField(allow_null=True, help_text="Set once the job is done.")


class DetailSerializer(serializers.Serializer):
    """An error answer."""

    detail = serializers.CharField()
