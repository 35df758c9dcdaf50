"""The audit trail in the admin: read-only, admins only (coordinators see their own site's objects' history on
those objects' pages)."""

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin

from apps.accounts.access import is_admin

admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditTrailAdmin(LogEntryAdmin):
    def has_module_permission(self, request) -> bool:
        return is_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_admin(request.user)
