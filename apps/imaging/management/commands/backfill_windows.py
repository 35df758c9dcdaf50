from django.core.management.base import BaseCommand

from apps.imaging.services import windows


class Command(BaseCommand):
    help = "Computes the display window of series stored before windows were computed at storing time."

    def handle(self, **options) -> None:
        self.stdout.write(f"Display window computed for {windows.backfill()} series.")
