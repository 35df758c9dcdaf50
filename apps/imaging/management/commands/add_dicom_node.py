from django.core.management.base import BaseCommand, CommandError

from apps.imaging.dicom_network import register_node
from apps.institutions.models import Institution


class Command(BaseCommand):
    help = "Registers the calling AE title of a modality or PACS that may send to the Storage SCP for one site."

    def add_arguments(self, parser) -> None:
        parser.add_argument("ae_title")
        parser.add_argument("--site", required=True, help="Site code (see add_site).")
        parser.add_argument("--host", default=None, help="Only accept associations from this IP address.")

    def handle(self, ae_title: str, site: str, host: str | None, **options) -> None:
        institution = Institution.objects.filter(code=site).first()
        if institution is None:
            raise CommandError(f"Unknown site {site!r}; add it with `manage.py add_site {site} NAME`.")
        try:
            node = register_node(ae_title, institution, host)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        pinned = f" from {node.allowed_host}" if node.allowed_host else ""
        self.stdout.write(f"DICOM node {node.ae_title!r} sends for site {institution.code}{pinned}.")
