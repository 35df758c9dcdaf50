from django.core.management.base import BaseCommand

from apps.imaging.dicom_network import DEFAULT_AE_TITLE, StorageSCP


class Command(BaseCommand):
    help = (
        "Runs the DICOM Storage SCP (C-STORE and C-ECHO). Only nodes registered with add_dicom_node may "
        "associate; each association becomes one upload of the node's site, processed once it ends."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=11112)
        parser.add_argument("--host", default="0.0.0.0", help="Address to listen on (default: all).")
        parser.add_argument("--ae-title", default=DEFAULT_AE_TITLE, help="This SCP's own AE title.")

    def handle(self, port: int, host: str, ae_title: str, **options) -> None:
        self.stdout.write(f"Storage SCP {ae_title!r} listening on {host}:{port} (Ctrl-C to stop).")
        try:
            StorageSCP(ae_title).start(host, port, block=True)
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
