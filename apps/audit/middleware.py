"""Couples each logged change to the person who made it."""

from auditlog.middleware import AuditlogMiddleware
from django.utils.functional import SimpleLazyObject


def _authenticated_user(request):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


class AuditActorMiddleware(AuditlogMiddleware):
    """auditlog's middleware, but the actor is read when a change is saved rather than when the request starts:
    the API authenticates (HTTP Basic for STOW-RS, say) inside the view, after the middleware has run."""

    @staticmethod
    def _get_actor(request):
        return SimpleLazyObject(lambda: _authenticated_user(request))
