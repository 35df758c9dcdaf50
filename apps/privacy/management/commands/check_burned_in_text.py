"""Checks for burned-in text the series stored while the OCR engine was missing (held until then)."""

from django.core.management.base import BaseCommand, CommandError

from apps.imaging.models import Series
from apps.privacy import text_detection
from apps.privacy.services import burned_in


class Command(BaseCommand):
    help = "Runs OCR on every series held because its pixels could not be checked for burned-in text."

    def handle(self, *args, **options):
        ok, engine = text_detection.availability()
        if not ok:
            raise CommandError(f"The OCR engine cannot run: {engine}.")
        pending = [s for s in Series.objects.filter(status__startswith="held_") if burned_in.unchecked(s)]
        for series in pending:
            check = burned_in.recheck(series)
            series.refresh_from_db()
            self.stdout.write(f"series {series.pk}: {len(check.boxes)} image(s) checked, text in "
                              f"{check.images_with_text}; now {series.get_status_display()}")
        self.stdout.write(f"{len(pending)} series checked with {engine}.")
