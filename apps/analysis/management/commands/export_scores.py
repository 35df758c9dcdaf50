"""`manage.py export_scores STUDY --out DIR`: every CSV export of a study, unblinded, for admins on the server."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.analysis import exports
from apps.studies.models import ReaderStudy


class Command(BaseCommand):
    help = "Writes a study's long, wide, assignment, patient and ROI CSVs (columns: README, 'Export columns')."

    def add_arguments(self, parser) -> None:
        parser.add_argument("study", type=int, help="Study id (as in the admin).")
        parser.add_argument("--out", type=Path, required=True, help="Folder for the CSV files (created).")
        parser.add_argument("--kind", action="append", choices=list(exports.CSV_EXPORTS),
                            help="Only these exports (repeatable); all by default.")

    def handle(self, *, study: int, out: Path, kind: list[str] | None, **options) -> None:
        found = ReaderStudy.objects.filter(pk=study).first()
        if found is None:
            raise CommandError(f"No study with id {study}.")
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name in kind or list(exports.CSV_EXPORTS):
                path = out / exports.export_filename(found, name)
                with path.open("w", encoding="utf-8", newline="") as handle:
                    rows = exports.write_csv(found, name, handle)
                self.stdout.write(f"{path} ({rows} rows)")
        except OSError as exc:
            raise CommandError(f"Could not write to {out}: {exc}") from exc
