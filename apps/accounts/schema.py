"""OpenAPI description of the project's own authentication classes."""

from drf_spectacular.authentication import BasicScheme


class LockoutAwareBasicScheme(BasicScheme):
    """`apps.accounts.authentication.BasicAuthentication` is HTTP Basic as far as a client can tell."""

    target_class = "apps.accounts.authentication.BasicAuthentication"
