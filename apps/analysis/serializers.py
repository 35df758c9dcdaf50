from rest_framework import serializers

from apps.analysis.models import ExportKind, RoiLabel, RoiMeasurement


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
