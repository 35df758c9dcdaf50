"""An object's own audit trail, linked from its admin list; shown to whoever may view that object."""

from auditlog.mixins import AuditlogHistoryAdminMixin
from django.contrib.admin.utils import unquote
from django.http import Http404


class ObjectHistory(AuditlogHistoryAdminMixin):
    show_auditlog_history_link = True

    def auditlog_history_view(self, request, object_id, extra_context=None):
        """Only for an object in this admin's (site-scoped) queryset: another site's case is not found."""
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404("No such object.")
        return super().auditlog_history_view(request, object_id, extra_context)
