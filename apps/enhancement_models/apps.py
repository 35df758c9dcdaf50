from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EnhancementModelsConfig(AppConfig):
    """The registry of enhancement models: the built-in CE U-Net and the ONNX models admins register."""

    name = "apps.enhancement_models"
    label = "enhancement_models"
    verbose_name = "Enhancement models"

    def ready(self) -> None:
        post_migrate.connect(_built_in_models, sender=self)


def _built_in_models(**kwargs) -> None:
    """After every migrate, the shipped models are in the registry (they are listed like any other model)."""
    from django.db import connections

    from apps.enhancement_models import services
    from apps.enhancement_models.models import EnhancementModel

    using = kwargs.get("using", "default")
    if EnhancementModel._meta.db_table in connections[using].introspection.table_names():  # not after "zero"
        services.ensure_built_in_models(using=using)
