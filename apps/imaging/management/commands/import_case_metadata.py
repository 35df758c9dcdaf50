from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.imaging.services import metadata
from apps.institutions.models import Institution


class Command(BaseCommand):
    help = "Imports clinical metadata (age, sex, tumour type, WHO grade, IDH, 1p/19q) for one site's cases."

    def add_arguments(self, parser) -> None:
        parser.add_argument("csv_path", type=Path)
        parser.add_argument("--site", required=True, help="Site code; patient_id rows are matched within it.")

    def handle(self, csv_path: Path, site: str, **options) -> None:
        institution = Institution.objects.filter(code=site).first()
        if institution is None:
            raise CommandError(f"Unknown site {site!r}.")
        if not csv_path.is_file():
            raise CommandError(f"{csv_path} is not a file.")
        with csv_path.open("rb") as stream:
            report = metadata.import_case_metadata(stream, institution)
        for error in report.errors:
            self.stderr.write(error)
        if report.errors:
            raise CommandError("Nothing was changed.")
        self.stdout.write(f"Clinical metadata updated for {report.updated} case(s).")
