"""Role-based rules for the Django admin, written once and mixed into each ModelAdmin."""

from django.contrib import admin

from apps.accounts.access import is_admin, is_coordinator, restrict_to_site


class AdminRoleOnly(admin.ModelAdmin):
    """Only admins see and change these objects (studies, sites, users)."""

    def has_module_permission(self, request) -> bool:
        return is_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return is_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_admin(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_admin(request.user)


class AdminRecordsOnly(AdminRoleOnly):
    """Records nobody writes by hand (audit trail, login records): admins read them, and delete them only where
    `admins_may_delete` (deleting a locked-out login attempt unlocks it)."""

    admins_may_delete = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.admins_may_delete and is_admin(request.user)


class SiteScoped(admin.ModelAdmin):
    """Coordinators see and change only their own site's objects; admins see all.

    `site_field` is the lookup from the model to its Institution.
    """

    site_field = "institution"
    coordinator_can_add = False
    coordinator_can_delete = False

    def get_queryset(self, request):
        return restrict_to_site(super().get_queryset(request), request.user, self.site_field)

    def _may_touch(self, request, obj) -> bool:
        if is_admin(request.user):
            return True
        if not is_coordinator(request.user):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request) -> bool:
        return is_admin(request.user) or is_coordinator(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._may_touch(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._may_touch(request, obj)

    def has_add_permission(self, request) -> bool:
        return is_admin(request.user) or (self.coordinator_can_add and is_coordinator(request.user))

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_admin(request.user) or (self.coordinator_can_delete and self._may_touch(request, obj))
