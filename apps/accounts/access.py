"""Who may see what: the one place that filters querysets by role and site.

Views, viewsets and admin pages ask these helpers instead of re-deriving the rules.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from rest_framework.permissions import BasePermission

from apps.accounts.models import Role, User


def is_admin(user: User) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.role == Role.ADMIN))


def is_coordinator(user: User) -> bool:
    return bool(user.is_authenticated and user.role == Role.COORDINATOR and user.institution_id)


def is_reader(user: User) -> bool:
    return bool(user.is_authenticated and user.role == Role.READER and user.institution_id)


def restrict_to_site(queryset: QuerySet, user: User, site_field: str = "institution") -> QuerySet:
    """Admins see everything, coordinators only their own site's rows, everybody else nothing."""
    if is_admin(user):
        return queryset
    if is_coordinator(user):
        return queryset.filter(**{site_field: user.institution_id})
    return queryset.none()


class IsAdmin(BasePermission):
    """Admins only: study definition, exports and anything unblinded."""

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


class IsCoordinatorOrAdmin(BasePermission):
    """Site data: coordinators (their own site, see `restrict_to_site`) and admins."""

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user) or is_coordinator(request.user)


class IsReader(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_reader(request.user)


def page_for(has_role: Callable[[User], bool], who: str) -> Callable:
    """Decorates the pages of one role. A caller who is not logged in goes to the login page; a logged-in user of
    another role gets the 403 page saying whom the page is for (`who`), never the login page, which would send a
    logged-in user straight back here: a redirect loop."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user):
                raise PermissionDenied(f"This page is for {who}.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
