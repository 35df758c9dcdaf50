"""Shapes of the admin study API; validation of content lives in the models and services."""

from rest_framework import serializers

from apps.enhancement_models.models import EnhancementModel
from apps.imaging.models import Sequence
from apps.studies.models import ReaderStudy, StudyItem, session_problem
from apps.studies.services import sources

SOURCE_FIELDS = frozenset({"dl_source", "dl_model", "dl_factor"})
SESSION_FIELDS = frozenset({"sessions", "washout_days"})


class ItemSerializer(serializers.ModelSerializer):
    anchors = serializers.ListField(child=serializers.CharField(), min_length=5, max_length=5)

    class Meta:
        model = StudyItem
        fields = ["key", "label", "anchors"]


class ReaderStudySerializer(serializers.ModelSerializer):
    sequences = serializers.ListField(  # a JSONField would take any JSON, and an update skips the model's clean()
        child=serializers.ChoiceField(choices=Sequence.choices), allow_empty=False, required=False,
        help_text="Sequences read in this study.",
    )
    items = ItemSerializer(many=True, read_only=True)
    readers = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    cases = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    calibration_cases = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    dl_model = serializers.PrimaryKeyRelatedField(
        queryset=EnhancementModel.objects.filter(retired=False), allow_null=True, required=False,
        help_text="Id of a registered model (GET /api/enhancement-models/), not retired; with dl_source 'model'.",
    )
    dl_source_description = serializers.SerializerMethodField(
        help_text="The source in words: the model (name, version) and factor, or the vendor series."
    )

    def get_dl_source_description(self, study: ReaderStudy) -> str:
        return sources.describe(study)

    def validate(self, attrs: dict) -> dict:
        """Sessions and washout against the mode, as the model's clean() does (an update does not run it)."""
        current = self.instance
        values = {name: attrs.get(name, getattr(current, name, None)) for name in ("mode", "sessions", "washout_days")}
        problem = session_problem(
            values["mode"] or "single", 1 if values["sessions"] is None else values["sessions"],
            0 if values["washout_days"] is None else values["washout_days"],
        )
        if problem:
            raise serializers.ValidationError({"sessions": problem})
        return attrs

    class Meta:
        model = ReaderStudy
        fields = [
            "id", "title", "reader_label", "sequences", "mode", "sessions", "washout_days", "readers_per_case",
            "cross_site", "min_distance", "seed", "dl_source", "dl_model", "dl_factor", "dl_source_description", "status", "items", "readers",
            "cases", "calibration_cases", "window_presets", "allow_revision", "assignment_generated_at", "created_at",
        ]
        read_only_fields = ["status", "assignment_generated_at", "created_at"]
