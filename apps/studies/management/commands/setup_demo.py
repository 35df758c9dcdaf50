from django.core.management.base import BaseCommand, CommandError

from apps.imaging.services import enhancement
from apps.imaging.services.demo import create_demo
from apps.studies.services.demo import create_demo_study, wait_for_enhancement


class Command(BaseCommand):
    help = (
        "Creates the demo: three sites, coordinators, readers, synthetic studies imported through the normal "
        "ingestion, their DL versions from the running worker, and a reader study open for reading."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--patients-per-site", type=int, default=4)
        parser.add_argument("--wait", type=float, default=900, help="Seconds to wait for the worker.")

    def handle(self, patients_per_site: int, wait: float, **options) -> None:
        demo = create_demo(patients_per_site=patients_per_site)
        for batch in demo.batches:
            self.stdout.write(
                f"Upload {batch.pk} ({batch.institution.code}): {batch.accepted_count} accepted, "
                f"{batch.duplicate_count} already stored, {batch.rejected_count} rejected"
            )
        remade = enhancement.remake_identity_jobs()  # a demo set up before factor 1 was fixed: copies, not DL
        if remade.queued or remade.refused:
            self.stdout.write(f"Identity DL series re-made: {len(remade.queued)} queued, {len(remade.refused)} "
                              "kept (already read)")

        def report(finished: int, total: int) -> None:
            self.stdout.write(f"Enhancement on the worker: {finished}/{total} series done")

        if not wait_for_enhancement(wait, report):
            raise CommandError("The worker did not finish the enhancement jobs; is it running? (see worker.log)")
        study = create_demo_study()
        self.stdout.write(f"Reader study {study.title!r}: {study.tasks.count()} reading tasks")
        self.stdout.write("\nDemo logins (username / password):")
        for login in demo.logins:
            self.stdout.write(f"  {login.role:12} {login.site:6} {login.username:20} {login.password}")
