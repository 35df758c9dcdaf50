from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from apps.accounts.admin_access import AdminRoleOnly, SiteScoped
from apps.audit.history import ObjectHistory
from apps.imaging.models import Case, DicomNode, EnhancementJob, Series, UploadBatch, UploadFileResult
from apps.imaging.services import enhancement, uploads
from apps.imaging.services import series as series_service
from apps.jobs import doors


class SeriesInline(admin.TabularInline):
    model = Series
    fields = ("sequence", "version", "source", "status", "rows", "columns")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Case)
class CaseAdmin(ObjectHistory, SiteScoped):
    list_display = ("code", "institution", "age", "sex", "tumour_type", "who_grade", "idh_status")
    list_filter = ("institution", "who_grade", "tumour_type")
    search_fields = ("code",)
    fields = ("code", "institution", "age", "sex", "tumour_type", "who_grade", "idh_status", "codeletion_1p19q")
    readonly_fields = ("code", "institution")
    inlines = [SeriesInline]


@admin.register(Series)
class SeriesAdmin(ObjectHistory, SiteScoped):
    site_field = "case__institution"
    list_display = ("case", "sequence", "version", "source", "status", "rows", "columns", "description")
    list_filter = ("sequence", "version", "source", "status")
    search_fields = ("case__code",)
    fields = ("case", "sequence", "version", "source", "status", "description", "conventional", "dl_model",
              "dl_factor", "rows", "columns")
    readonly_fields = ("case", "version", "source", "description", "conventional", "dl_model", "dl_factor", "rows",
                       "columns")

    def save_model(self, request, obj, form, change) -> None:
        try:
            series_service.save_coordinator_changes(obj, set(form.changed_data))
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), level=messages.ERROR)


class UploadFileResultInline(admin.TabularInline):
    model = UploadFileResult
    fields = ("name", "outcome", "reason", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(UploadBatch)
class UploadBatchAdmin(SiteScoped):
    list_display = ("id", "institution", "channel", "status", "outcome", "file_count", "accepted_count", "rejected_count", "created_at")
    list_filter = ("status", "channel", "institution")
    readonly_fields = [f.name for f in UploadBatch._meta.fields]
    inlines = [UploadFileResultInline]
    actions = ["retry"]

    @admin.action(description="Process again (files already stored are skipped)")
    def retry(self, request, queryset) -> None:
        doors.retry_selected(request, queryset, uploads.retry_upload)


@admin.register(EnhancementJob)
class EnhancementJobAdmin(SiteScoped):
    site_field = "series__case__institution"
    list_display = ("id", "series", "status", "noise_reduction_factor", "model", "device", "attempts",
                    "qa_flagged", "held", "finished_at")
    list_filter = ("status", "device", "qa_flagged")
    readonly_fields = [*(f.name for f in EnhancementJob._meta.fields), "qa_failures", "difference"]

    @admin.display(boolean=True, description="Held from readers")
    def held(self, job: EnhancementJob) -> bool:
        return job.held_for_review

    @admin.display(description="Why the residual check failed")
    def qa_failures(self, job: EnhancementJob) -> str:
        return " ".join(enhancement.qa_failures(job)) or "—"

    @admin.display(description="Difference image (conventional minus DL)")
    def difference(self, job: EnhancementJob) -> str:
        if not job.difference_image:
            return "—"
        url = reverse("enhancement-job-difference-image", args=[job.pk])
        return format_html('<img src="{}" alt="difference image" style="max-width: 384px">', url)
    actions = ["retry", "accept"]

    @admin.action(description="Run enhancement again")
    def retry(self, request, queryset) -> None:
        doors.retry_selected(request, queryset, enhancement.retry_enhancement)

    @admin.action(description="Accept for reading despite the failed residual check")
    def accept(self, request, queryset) -> None:
        accepted = 0
        for job in queryset.select_related("series__case"):
            try:
                enhancement.accept_qa(job, request.user)
                accepted += 1
            except ValueError as exc:
                messages.warning(request, f"Job {job.pk}: {exc}")
        messages.info(request, f"{accepted} job(s) accepted for reading.")



@admin.register(DicomNode)
class DicomNodeAdmin(ObjectHistory, AdminRoleOnly):
    """Which modalities and PACS may send by C-STORE, and for which site (``add_dicom_node`` does the same)."""

    list_display = ("ae_title", "institution", "allowed_host", "created_at")
    list_filter = ("institution",)
    search_fields = ("ae_title",)
    fields = ("ae_title", "institution", "allowed_host")
