from rest_framework import serializers

from apps.imaging.models import Case, EnhancementJob, Series, UploadBatch, UploadFileResult
from apps.imaging.services import dl_versions, enhancement, uploads, vendor
from apps.institutions.models import Institution
from apps.jobs.serializers import JOB_FIELDS, JobFields


class UploadFileResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = UploadFileResult
        fields = ["name", "outcome", "reason", "message"]


class UploadBatchSerializer(JobFields, serializers.ModelSerializer):
    institution = serializers.SlugRelatedField(slug_field="code", read_only=True)
    results = UploadFileResultSerializer(many=True, read_only=True)
    progress = serializers.FloatField(read_only=True)
    status_display = serializers.CharField(
        source="get_state_display", read_only=True, help_text="The status in words; once done, what the batch came to."
    )
    summary = serializers.SerializerMethodField(help_text="What happened to the upload, in words.")
    items = serializers.ListField(
        child=serializers.CharField(), read_only=True,
        help_text="The neutral name each uploaded file or archive got, in the order sent (an unpacked archive: its "
        "folder, ending in '/'); pair it with your own file names to tell which of your files an outcome is.",
    )

    class Meta:
        model = UploadBatch
        fields = [
            "id", "institution", "channel", "vendor_output", *JOB_FIELDS, "outcome", "status_display", "summary", "file_count",
            "processed_count", "accepted_count", "duplicate_count", "rejected_count", "held_count", "progress", "items",
            "results",
        ]
        read_only_fields = fields

    def get_summary(self, batch: UploadBatch) -> str:
        return uploads.describe(batch)


class UploadCreateSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    institution = serializers.SlugRelatedField(slug_field="code", read_only=False, required=False,
                                               queryset=Institution.objects.all())
    vendor_output = serializers.BooleanField(
        default=False, help_text="The files are a vendor's DL-enhanced output: each series is linked as the vendor DL "
        "version of its conventional series (or held for linking), whatever its header says.",
    )


class VendorAttachSerializer(serializers.Serializer):
    vendor_series = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, help_text="Id of the uploaded vendor-enhanced series."
    )


class DLVersionSerializer(serializers.ModelSerializer):
    dl_source = serializers.SerializerMethodField(help_text="Which source made it: 'vendor', or the model at a factor.")

    def get_dl_source(self, series: Series) -> str:
        return str(dl_versions.source_of(series) or "unknown")

    class Meta:
        model = Series
        fields = ["id", "source", "status", "dl_model", "dl_factor", "dl_source"]
        read_only_fields = fields


class SeriesSerializer(serializers.ModelSerializer):
    case = serializers.SlugRelatedField(slug_field="code", read_only=True)
    link_candidates = serializers.SerializerMethodField(
        help_text="For a held vendor-enhanced series: the conventional series it can be linked to (attach-vendor)."
    )
    dl_versions = serializers.SerializerMethodField(
        help_text="For a conventional series: its DL versions, one per source (model at a factor, or vendor)."
    )

    def get_link_candidates(self, series: Series) -> list[int]:
        return vendor.vendor_candidates(series)

    def get_dl_versions(self, series: Series) -> list[dict]:
        return DLVersionSerializer(dl_versions.versions_of(series).order_by("pk"), many=True).data

    class Meta:
        model = Series
        fields = ["id", "case", "sequence", "sequence_overridden", "version", "source", "status", "description",
                  "rows", "columns", "pixel_spacing", "slice_thickness", "conventional", "dl_model", "dl_factor",
                  "dl_versions", "hold_reason", "link_candidates"]
        read_only_fields = [f for f in fields if f not in ("sequence", "status")]


class CaseSerializer(serializers.ModelSerializer):
    institution = serializers.SlugRelatedField(slug_field="code", read_only=True)
    series = SeriesSerializer(many=True, read_only=True)

    class Meta:
        model = Case
        fields = ["id", "code", "institution", "age", "sex", "tumour_type", "who_grade", "idh_status",
                  "codeletion_1p19q", "created_at", "series"]
        read_only_fields = ["id", "code", "institution", "created_at", "series"]


class EnhancementJobSerializer(JobFields, serializers.ModelSerializer):
    qa_failures = serializers.SerializerMethodField(help_text="Why the residual check failed, in words.")
    qa_accepted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    held_for_review = serializers.BooleanField(
        read_only=True, help_text="The DL series is not offered for reading until someone accepts it."
    )

    class Meta:
        model = EnhancementJob
        fields = ["id", "series", "output_series", "replaces", *JOB_FIELDS, "model", "model_version",
                  "noise_reduction_factor", "device", "runtime", "run_settings", "timings", "qa",
                  "qa_flagged", "qa_failures", "held_for_review", "qa_accepted_by", "qa_accepted_at"]
        read_only_fields = fields

    def get_qa_failures(self, job: EnhancementJob) -> list[str]:
        return enhancement.qa_failures(job)
