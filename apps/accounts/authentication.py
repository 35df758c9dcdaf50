"""Login attempts: where they come from, and API authentication that tells a locked-out caller so (django-axes)
rather than only "invalid password"."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from rest_framework import authentication, exceptions

USERNAME_MAX_LENGTH = 150  # Django's username field: no longer name can be a user
LOCKED_OUT = ("Too many failed logins: this login is locked for a while. Try again later, or ask your study "
              "admin to unlock it.")


class BasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic (scripts, STOW-RS senders). A username locked after repeated failures gets 429, even with the
    right password, so a sending script stops rather than retrying into a longer lock. No or wrong credentials:
    401 with this challenge (it is the first authentication class of the API, so DRF names it)."""

    www_authenticate_realm = "readerstudy"

    def authenticate_credentials(self, userid, password, request=None):
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            if getattr(request, "axes_locked_out", False):
                raise exceptions.Throttled(detail=LOCKED_OUT) from None
            raise


def client_address(request: HttpRequest) -> str:
    """The address a login attempt came from. Behind the deployment's reverse proxy (`READERSTUDY_BEHIND_TLS_PROXY`)
    that is the last X-Forwarded-For entry, the one the proxy appends; earlier entries are the client's own words."""
    if settings.BEHIND_PROXY:
        last_hop = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        try:
            return str(ipaddress.ip_address(last_hop))
        except ValueError:
            pass  # not through the proxy, or not an address: the connection's own address
    return request.META.get("REMOTE_ADDR", "")


def client_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username of a login attempt as the login records keep it: cut to the longest a username can be, so a
    hostile 20 kB name is refused like any wrong one instead of overflowing the record's column."""
    if credentials:
        username = credentials.get("username")
    else:
        username = getattr(request, "data", request.POST).get("username")
    return username[:USERNAME_MAX_LENGTH] if isinstance(username, str) else username
