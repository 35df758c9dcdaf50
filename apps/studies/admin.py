"""Study definition for admins in the Django admin; actions and the progress page call the services."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html

from apps.accounts.admin_access import AdminRoleOnly
from apps.accounts.models import Role, User
from apps.audit.history import ObjectHistory
from apps.enhancement_models.models import EnhancementModel
from apps.studies.models import ReaderStudy, ReadingTask, ScoreAudit, StudyItem, StudyReader, StudyStatus
from apps.studies.services import definition, progress, sources


class StudyItemInline(admin.TabularInline):
    model = StudyItem
    extra = 0
    fields = ["order", "key", "label", "anchors"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or obj.status == StudyStatus.DRAFT

    has_add_permission = has_delete_permission = has_change_permission


class StudyReaderInline(admin.TabularInline):
    model = StudyReader
    extra = 0

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "reader":
            kwargs["queryset"] = User.objects.filter(role=Role.READER, institution__isnull=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or obj.status == StudyStatus.DRAFT

    has_add_permission = has_delete_permission = has_change_permission


def _run(request, studies, service, done: str) -> None:
    for study in studies:
        try:
            result = service(study)
        except (ValueError, ValidationError, definition.StudyStateError) as exc:
            messages.error(request, f"{study}: {exc}")
        else:
            messages.success(request, f"{study}: {done.format(result=result)}")


@admin.register(ReaderStudy)
class ReaderStudyAdmin(ObjectHistory, AdminRoleOnly):
    list_display = ["title", "mode", "status", "dl_source_text", "readers_per_case", "cross_site",
                    "assignment_generated_at", "progress_link"]
    list_filter = ["status", "mode"]
    filter_horizontal = ["cases", "calibration_cases"]
    readonly_fields = ["status", "assignment_generated_at"]
    inlines = [StudyItemInline, StudyReaderInline]
    actions = ["generate_assignment", "open_for_reading", "lock_studies"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != StudyStatus.DRAFT:
            return [f.name for f in obj._meta.fields] + ["cases", "calibration_cases"]
        return self.readonly_fields

    def save_related(self, request, form, formsets, change) -> None:
        """Calibration cases belong to the study's cases; a study saved without items gets the defaults."""
        super().save_related(request, form, formsets, change)
        study = form.instance
        study.cases.add(*study.calibration_cases.all())
        if not study.items.exists():
            definition.add_default_items(study)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "dl_model":  # a retired model makes no new DL version
            kwargs["queryset"] = EnhancementModel.objects.filter(retired=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="DL source")
    def dl_source_text(self, obj: ReaderStudy) -> str:
        return sources.describe(obj)

    @admin.display(description="Follow")
    def progress_link(self, obj: ReaderStudy) -> str:
        return format_html(
            '<a href="{}">progress</a> · <a href="{}">exports</a> · <a href="{}">report</a>',
            reverse("admin:studies_readerstudy_progress", args=[obj.pk]),
            reverse("analysis:study_exports", args=[obj.pk]),
            reverse("analysis:study_report", args=[obj.pk]),
        )

    @admin.action(description="Generate the assignment (draft studies)")
    def generate_assignment(self, request, queryset) -> None:
        _run(request, queryset, definition.generate, "{result} reading tasks generated.")

    @admin.action(description="Open for reading")
    def open_for_reading(self, request, queryset) -> None:
        _run(request, queryset, definition.open_for_reading, "open for reading.")

    @admin.action(description="Lock (end reading)")
    def lock_studies(self, request, queryset) -> None:
        _run(request, queryset, definition.lock, "locked.")

    def get_urls(self):
        view = self.admin_site.admin_view(self.progress_view)
        return [path("<int:pk>/progress/", view, name="studies_readerstudy_progress"), *super().get_urls()]

    def progress_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        study = get_object_or_404(ReaderStudy, pk=pk)
        context = {**self.admin_site.each_context(request), "study": study, "opts": self.model._meta,
                   "title": f"Progress of {study}", **progress.study_progress(study)}
        return render(request, "studies/progress.html", context)


@admin.register(ReadingTask)
class ReadingTaskAdmin(AdminRoleOnly):
    list_display = ["study", "reader", "position", "case", "sequence", "version", "left_version", "calibration",
                    "status", "seconds_on_task"]
    list_filter = ["study", "status", "calibration", "sequence"]
    search_fields = ["case__code", "reader__username"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ScoreAudit)
class ScoreAuditAdmin(AdminRoleOnly):
    list_display = ["score", "changed_by", "changed_at", "old_value", "new_value"]
    list_filter = ["score__task__study"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
