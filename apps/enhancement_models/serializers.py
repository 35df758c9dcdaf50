from rest_framework import serializers

from apps.enhancement_models.models import EnhancementModel, Normalisation
from worker.enhance.contract import MAX_MATRIX, MAX_PAD_MULTIPLE, MAX_SLICES, MIN_MATRIX


class EnhancementModelSerializer(serializers.ModelSerializer):
    registered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    retired_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reference = serializers.SerializerMethodField(
        help_text="How READERSTUDY_ENHANCE_MODEL names it: the version of a built-in model, else NAME@VERSION."
    )

    class Meta:
        model = EnhancementModel
        fields = ["id", "name", "version", "reference", "runtime", "built_in", "sha256", "size", "intended_use",
                  "training_data", "licence", "slices", "normalisation", "max_matrix", "pad_multiple",
                  "context_input", "check_report", "registered_by", "registered_at", "retired", "retired_at",
                  "retired_by", "retired_reason"]
        read_only_fields = fields

    def get_reference(self, model: EnhancementModel) -> str:
        return model.version if model.built_in else f"{model.name}@{model.version}"


class EnhancementModelUploadSerializer(serializers.Serializer):
    """A multipart registration: the ONNX file, its name and version, model card and input contract."""

    file = serializers.FileField(help_text="The .onnx file (self-contained, no external data).")
    name = serializers.CharField(max_length=100)
    version = serializers.CharField(max_length=64)
    intended_use = serializers.CharField()
    training_data = serializers.CharField()
    licence = serializers.CharField(max_length=200)
    slices = serializers.IntegerField(default=3, min_value=1, max_value=MAX_SLICES)
    normalisation = serializers.ChoiceField(choices=Normalisation.choices, default=Normalisation.P99)
    max_matrix = serializers.IntegerField(default=768, min_value=MIN_MATRIX, max_value=MAX_MATRIX)
    pad_multiple = serializers.IntegerField(default=1, min_value=1, max_value=MAX_PAD_MULTIPLE)
    context_input = serializers.BooleanField(default=False)


class RetireSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class RefusalSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="not_onnx, oversized, wrong_inputs, wrong_output_shape, non_finite, "
                                           "returns_input, too_slow, external_data, duplicate, ...")
    detail = serializers.CharField()
