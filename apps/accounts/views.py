from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse

from apps.accounts.access import is_admin, is_coordinator, is_reader

HOME_BY_ROLE = (
    (is_reader, "reading:worklist"),
    (is_coordinator, "imaging:upload_list"),
    (is_admin, "admin:index"),
)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Sends each role to its own start page."""
    for has_role, url_name in HOME_BY_ROLE:
        if has_role(request.user):
            try:
                return redirect(reverse(url_name))
            except NoReverseMatch:
                continue
    raise PermissionDenied("Your login has no role here yet: ask your study admin to make you a reader, a site "
                           "coordinator or an admin.")
