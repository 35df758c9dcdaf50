"""Login attempts: where they come from, and API authentication that tells a locked-out caller so (django-axes)
rather than only "invalid password"."""

from django.conf import settings
from django.http import HttpRequest
from rest_framework import authentication, exceptions

LOCKED_OUT = ("Too many failed logins: this login is locked for a while. Try again later, or ask your study "
              "admin to unlock it.")


class BasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic (scripts, STOW-RS senders). A username locked after repeated failures gets 429, even with the
    right password, so a sending script stops rather than retrying into a longer lock."""

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
        if last_hop:
            return last_hop
    return request.META.get("REMOTE_ADDR", "")
