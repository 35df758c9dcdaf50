from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied

from apps.accounts.admin_access import AdminRoleOnly
from apps.analysis import blinding, plan
from apps.analysis.models import (
    AnalysisPlan,
    BlindingGuess,
    BlindingQuestion,
    ExportJob,
    PowerAnalysisJob,
    RoiMeasurement,
)
from apps.jobs import doors, lifecycle
from apps.studies.models import ReaderStudy, StudyStatus


@admin.register(ExportJob)
class ExportJobAdmin(AdminRoleOnly):
    list_display = ["pk", "study", "kind", "status", "progress", "rows", "created_by", "created_at"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]
    actions = ["retry"]

    @admin.action(description="Export again (failed exports, or ones whose worker stopped)")
    def retry(self, request, queryset) -> None:
        doors.retry_selected(request, queryset, lifecycle.retry)


@admin.register(PowerAnalysisJob)
class PowerAnalysisJobAdmin(AdminRoleOnly):
    """Read-only: power analyses are started from a study's power page (analysis:study_power), which draws them."""

    list_display = ["pk", "study", "status", "designs_done", "designs", "created_by", "created_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in PowerAnalysisJob._meta.fields]
    actions = ["retry"]

    @admin.action(description="Run again (failed analyses, or ones whose worker stopped)")
    def retry(self, request, queryset) -> None:
        doors.retry_selected(request, queryset, lifecycle.retry)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(RoiMeasurement)
class RoiMeasurementAdmin(AdminRoleOnly):
    """Unblinded (both versions' statistics): admins only, read-only."""

    list_display = ["study", "case", "sequence", "label", "drawn_by", "conventional_mean", "dl_mean", "updated_at"]
    list_filter = ["study", "sequence", "label"]
    readonly_fields = [f.name for f in RoiMeasurement._meta.fields]


class AnalysisPlanForm(forms.ModelForm):
    class Meta:
        model = AnalysisPlan
        fields = ["study", "primary_items", "primary_sequences", "test", "hypothesis", "margin", "alpha",
                  "multiplicity", "session_effect"]

    def clean(self):
        cleaned = super().clean()
        study = cleaned.get("study") or getattr(self.instance, "study", None)
        if study is None:
            return cleaned
        try:
            plan.require_changeable(study, self.instance if self.instance.pk else None)
            plan.validate(study, {name: cleaned.get(name) for name in plan.PLAN_FIELDS})
        except (plan.PlanLocked, plan.PlanInvalid) as exc:
            raise forms.ValidationError(str(exc)) from exc
        return cleaned


@admin.register(AnalysisPlan)
class AnalysisPlanAdmin(AdminRoleOnly):
    """Fixed by an admin while the study is a draft; read-only once the study has opened and the plan is locked."""

    form = AnalysisPlanForm
    list_display = ["study", "test", "hypothesis", "alpha", "multiplicity", "frozen_at", "sha256"]
    list_filter = ["test", "hypothesis"]
    readonly_fields = ["frozen_at", "sha256", "frozen_json", "updated_by", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ["study", *self.readonly_fields]
        return self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and not (obj is not None and obj.is_frozen)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.is_frozen)

    def save_model(self, request, obj, form, change) -> None:
        values = {name: form.cleaned_data[name] for name in plan.PLAN_FIELDS}
        saved = plan.set_plan(obj.study, values, request.user)
        obj.pk, obj.updated_by = saved.pk, saved.updated_by


@admin.register(BlindingQuestion)
class BlindingQuestionAdmin(AdminRoleOnly):
    """Switched on (added) or off (deleted) while the study is a draft; fixed once it has opened."""

    list_display = ["study", "created_at", "created_by"]
    readonly_fields = ["created_at", "created_by"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        draft = obj is None or obj.study.status == StudyStatus.DRAFT
        return super().has_delete_permission(request, obj) and draft

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "study":
            kwargs["queryset"] = ReaderStudy.objects.filter(status=StudyStatus.DRAFT)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        try:
            blinding.set_enabled(obj.study, True, request.user)
        except blinding.BlindingLocked as exc:
            raise PermissionDenied(str(exc)) from exc
        obj.pk = BlindingQuestion.objects.get(study=obj.study).pk


@admin.register(BlindingGuess)
class BlindingGuessAdmin(AdminRoleOnly):
    """Readers' answers, unblinded by the task they belong to: admins read them, nobody writes them here."""

    list_display = ["task", "reader", "answer", "created_at"]
    list_filter = ["answer", "task__study"]
    readonly_fields = [f.name for f in BlindingGuess._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
