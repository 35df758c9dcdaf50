from rest_framework import serializers

from apps.analysis.models import AnalysisPlan, ExportKind, RoiLabel, RoiMeasurement
from apps.imaging.models import Sequence
from apps.jobs.models import JobStatus


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
    attempts = serializers.IntegerField(min_value=0, help_text="How many times a worker started it.")
    max_attempts = serializers.IntegerField(min_value=0)
    can_retry = serializers.BooleanField(help_text="It failed, or its worker stopped: POST .../retry/ queues it again.")
    download_url = serializers.CharField(allow_null=True, help_text="Set once the job is done.")


class DetailSerializer(serializers.Serializer):
    """An error answer."""

    detail = serializers.CharField()


class AnalysisPlanSerializer(serializers.ModelSerializer):
    """A study's analysis plan. Writable while the study is a draft; read-only once it is locked."""

    primary_items = serializers.ListField(child=serializers.CharField(max_length=48), min_length=1, max_length=50)
    primary_sequences = serializers.ListField(child=serializers.ChoiceField(choices=Sequence.choices), min_length=1)
    margin = serializers.FloatField(allow_null=True, required=False, default=None)
    alpha = serializers.FloatField(required=False, default=0.05)
    locked = serializers.BooleanField(source="is_frozen", read_only=True)
    canonical_json = serializers.CharField(source="frozen_json", read_only=True,
                                           help_text="The plan as hashed; empty until it is locked.")

    class Meta:
        model = AnalysisPlan
        fields = ["study", "primary_items", "primary_sequences", "test", "hypothesis", "margin", "alpha",
                  "multiplicity", "session_effect", "locked", "frozen_at", "sha256", "canonical_json", "updated_at"]
        read_only_fields = ["study", "frozen_at", "sha256", "updated_at"]
