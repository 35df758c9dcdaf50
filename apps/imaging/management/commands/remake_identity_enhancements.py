from django.core.management.base import BaseCommand, CommandError

from apps.imaging.services import enhancement


class Command(BaseCommand):
    help = (
        "Finds finished enhancement jobs made at noise-reduction factor 1 (their DL series is a copy of the "
        "conventional one) and queues a re-make at READERSTUDY_ENHANCE_FACTOR on the worker. The DL series is "
        "replaced in place, so reading tasks not opened yet show the new images; a series a reader has already "
        "opened or scored is refused and listed (exit status 1), and stays as it is."
    )

    def handle(self, **options) -> None:
        report = enhancement.remake_identity_jobs()
        for job in report.queued:
            self.stdout.write(
                f"Queued job {job.pk}: {job.series} at factor {job.noise_reduction_factor:g} "
                f"(replaces DL series {job.replaces_id})"
            )
        for reason in report.refused:
            self.stderr.write(f"Refused: {reason}")
        self.stdout.write(f"{len(report.queued)} re-make(s) queued, {len(report.refused)} refused.")
        if report.refused:
            raise CommandError("Some identity DL series were already read; see above.")
