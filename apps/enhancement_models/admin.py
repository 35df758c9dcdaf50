"""The model registry in the Django admin: admins register (the same checks as the API) and retire models; nobody
edits or deletes one."""

from django import forms
from django.contrib import admin, messages

from apps.accounts.admin_access import AdminRoleOnly
from apps.audit.history import ObjectHistory
from apps.enhancement_models import services
from apps.enhancement_models.models import EnhancementModel
from worker.enhance.contract import InputContract

CARD_AND_CONTRACT = ("name", "version", "intended_use", "training_data", "licence", "slices", "normalisation",
                     "max_matrix", "pad_multiple", "context_input")


class RegistrationForm(forms.ModelForm):
    """Registers through `services.register_model`: a refused upload is a form error with its reason."""

    file = forms.FileField(help_text="The .onnx file (self-contained, no external data); it is tried on a phantom "
                                     "series before it is registered.")
    registering_user = None  # set per request by EnhancementModelAdmin.get_form

    class Meta:
        model = EnhancementModel
        fields = [*CARD_AND_CONTRACT[:5], "file", *CARD_AND_CONTRACT[5:]]

    def _post_clean(self) -> None:
        """The service validates and creates the row; the form does not build one of its own."""

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.instance = services.register_model(
                self.registering_user, cleaned["file"], name=cleaned["name"], version=cleaned["version"],
                card=services.ModelCard(cleaned["intended_use"], cleaned["training_data"], cleaned["licence"]),
                contract=InputContract(cleaned["slices"], cleaned["normalisation"], cleaned["max_matrix"],
                                       cleaned["pad_multiple"], cleaned["context_input"]),
            )
        except services.RegistrationRefused as exc:
            raise forms.ValidationError(f"Refused ({exc.code}): {exc.reason}.") from exc
        return cleaned


@admin.register(EnhancementModel)
class EnhancementModelAdmin(ObjectHistory, AdminRoleOnly):
    list_display = ("name", "version", "runtime", "built_in", "retired", "short_sha256", "registered_by",
                    "registered_at")
    list_filter = ("runtime", "built_in", "retired")
    search_fields = ("name", "version", "sha256")
    actions = ["retire"]

    @admin.display(description="sha256")
    def short_sha256(self, model: EnhancementModel) -> str:
        return model.sha256[:12]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = RegistrationForm
            kwargs["fields"] = RegistrationForm.Meta.fields
        form = super().get_form(request, obj, change=change, **kwargs)
        form.registering_user = request.user
        return form

    def get_fields(self, request, obj=None):
        if obj is None:
            return RegistrationForm.Meta.fields
        return [*CARD_AND_CONTRACT, "runtime", "built_in", "file", "sha256", "size", "check_report",
                "registered_by", "registered_at", "retired", "retired_at", "retired_by", "retired_reason"]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a registered model never changes: register a new version

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its DL series name it; retire it instead (never the built-in model)

    def save_model(self, request, obj, form, change) -> None:
        """Nothing left to save: the registration form's service call created the row."""

    @admin.action(description="Retire (no new job uses it; the built-in model cannot be retired)")
    def retire(self, request, queryset) -> None:
        for model in queryset:
            try:
                services.retire_model(model, request.user, "Retired in the admin.")
            except ValueError as exc:
                messages.warning(request, f"{model}: {exc}")
            else:
                messages.info(request, f"{model} retired.")
