from django.contrib import admin

from apps.accounts.admin_access import AdminRoleOnly
from apps.analysis.models import ExportJob, RoiMeasurement


@admin.register(ExportJob)
class ExportJobAdmin(AdminRoleOnly):
    list_display = ["pk", "study", "kind", "status", "progress", "rows", "created_by", "created_at"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]


@admin.register(RoiMeasurement)
class RoiMeasurementAdmin(AdminRoleOnly):
    """Unblinded (both versions' statistics): admins only, read-only."""

    list_display = ["study", "case", "sequence", "label", "drawn_by", "conventional_mean", "dl_mean", "updated_at"]
    list_filter = ["study", "sequence", "label"]
    readonly_fields = [f.name for f in RoiMeasurement._meta.fields]
