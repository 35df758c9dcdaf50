from django.contrib import admin

from apps.accounts.admin_access import AdminRoleOnly
from apps.audit.history import ObjectHistory
from apps.institutions.models import Institution


@admin.register(Institution)
class InstitutionAdmin(ObjectHistory, AdminRoleOnly):
    list_display = ("code", "name", "pseudonym", "deny_by_default", "deface_3d_head", "created_at")
    search_fields = ("code", "name")
