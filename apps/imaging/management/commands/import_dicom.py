from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.imaging.models import FileOutcome
from apps.imaging.services import ingest, uploads
from apps.institutions.models import Institution


class Command(BaseCommand):
    help = (
        "Imports a folder or zip of DICOM files for one site: validates, de-identifies and stores them, prints "
        "an outcome per file and exits non-zero when any file was rejected."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--site", required=True, help="Site code (see add_site).")
        parser.add_argument("--quiet", action="store_true", help="Print only the totals.")

    def handle(self, path: Path, site: str, quiet: bool, **options) -> None:
        institution = Institution.objects.filter(code=site).first()
        if institution is None:
            raise CommandError(f"Unknown site {site!r}; add it with `manage.py add_site {site} NAME`.")
        try:
            batch = uploads.stage_path(institution, None, path, channel="command")
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        except uploads.UploadRefused as exc:
            self.print_results(exc.batch, quiet)
            reasons = "; ".join(f"{r.name}: {r.message}" for r in exc.batch.results.all()[:3])
            raise CommandError(f"Upload {exc.batch.pk}: {exc} {reasons}".strip()) from exc
        batch = ingest.process_batch(batch.pk)
        self.print_results(batch, quiet)
        self.stdout.write(
            f"Upload {batch.pk}: {batch.accepted_count} accepted, {batch.duplicate_count} already stored, "
            f"{batch.rejected_count} rejected of {batch.file_count} files."
        )
        if batch.rejected_count:
            raise CommandError(f"{batch.rejected_count} file(s) rejected.")

    def print_results(self, batch, quiet: bool) -> None:
        if quiet:
            return
        for result in batch.results.all():
            shown = result.outcome == FileOutcome.REJECTED or result.held
            detail = f"  {result.reason}: {result.message}" if shown else ""
            self.stdout.write(f"{result.outcome:9} {result.name}{detail}")
