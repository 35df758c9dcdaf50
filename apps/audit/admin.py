"""The audit trail in the admin: read-only, admins only (coordinators see their own site's objects' history on
those objects' pages)."""

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin

from apps.accounts.admin_access import AdminRecordsOnly

admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditTrailAdmin(AdminRecordsOnly, LogEntryAdmin):
    pass
