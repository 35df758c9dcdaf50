from axes import admin as axes_admins
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from apps.accounts.admin_access import AdminRecordsOnly, AdminRoleOnly
from apps.accounts.models import User
from apps.audit.history import ObjectHistory


@admin.register(User)
class ReaderStudyUserAdmin(ObjectHistory, AdminRoleOnly, UserAdmin):
    list_display = ("username", "role", "institution", "pseudonym", "is_active")
    list_filter = ("role", "institution", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Study role", {"fields": ("role", "institution", "pseudonym")}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Study role", {"fields": ("role", "institution", "pseudonym")}))


class LoginRecordAdmin(AdminRecordsOnly):
    """django-axes' login records for admins: read them, and delete a locked-out attempt to unlock it."""

    admins_may_delete = True


for model, axes_admin in ((AccessAttempt, axes_admins.AccessAttemptAdmin), (AccessLog, axes_admins.AccessLogAdmin),
                          (AccessFailureLog, axes_admins.AccessFailureLogAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, type(axes_admin.__name__, (LoginRecordAdmin, axes_admin), {}))
