from django.core.management.base import BaseCommand, CommandError

from apps.institutions.services import add_site


class Command(BaseCommand):
    help = "Adds a participating site with a neutral pseudonym."

    def add_arguments(self, parser) -> None:
        parser.add_argument("code", help="Short code, letters, digits, - and _.")
        parser.add_argument("name", help="The site's full name (never shown to readers).")

    def handle(self, code: str, name: str, **options) -> None:
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_slug

        try:
            validate_slug(code)
            site = add_site(code, name.strip())
        except (ValidationError, ValueError) as exc:
            raise CommandError(f"Cannot add site {code!r}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}") from exc
        self.stdout.write(f"Site {site.code}: {site.name} (shown as {site.pseudonym})")
