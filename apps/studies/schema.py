"""OpenAPI (drf-spectacular) extensions of the studies app; imported by `StudiesConfig.ready()` so they register."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ReaderSessionScheme(OpenApiAuthenticationExtension):
    """`ReaderSessionAuthentication`: Django's session cookie, like spectacular's built-in `SessionScheme` for DRF's
    `SessionAuthentication`. Its own name because the reading endpoints answer 401, not 403, without a session."""

    target_class = "apps.studies.api.ReaderSessionAuthentication"
    name = "readerSessionAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The reader's Django session cookie (log in through the site); no session answers 401.",
        }
