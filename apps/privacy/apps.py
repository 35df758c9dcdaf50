from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """De-identification evidence: what was done to each upload, proven without keeping a value."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.privacy"
    verbose_name = "Privacy evidence"
