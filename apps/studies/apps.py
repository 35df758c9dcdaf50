from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "apps.studies"
    label = "studies"

    def ready(self) -> None:
        from apps.studies import schema  # noqa: F401  (registers the OpenAPI authentication extension)
