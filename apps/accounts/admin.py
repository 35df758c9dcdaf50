from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from apps.accounts.admin_access import AdminRoleOnly
from apps.accounts.models import User
from apps.audit.history import ObjectHistory


@admin.register(User)
class ReaderStudyUserAdmin(ObjectHistory, AdminRoleOnly, UserAdmin):
    list_display = ("username", "role", "institution", "pseudonym", "is_active")
    list_filter = ("role", "institution", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Study role", {"fields": ("role", "institution", "pseudonym")}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Study role", {"fields": ("role", "institution", "pseudonym")}))
