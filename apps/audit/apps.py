from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit trail of every change people and the worker make to study data (invariant 3: who, when,
    old, new). Scores keep their own, finer trail (`studies.ScoreAudit`); everything else is logged here."""

    name = "apps.audit"
    label = "audit"

    def ready(self) -> None:
        from apps.audit import registry

        registry.register_audited_models()
