"""Creating sites: one function used by the admin, the API and the add_site command."""

import string

from django.db import transaction

from apps.institutions.models import Institution


def next_pseudonym() -> str:
    """The first free neutral label "Site A", "Site B", ... "Site Z", "Site AA", ..."""
    taken = set(Institution.objects.values_list("pseudonym", flat=True))
    letters = string.ascii_uppercase
    index = 0
    while True:
        label, n = "", index
        while True:
            label = letters[n % 26] + label
            n = n // 26 - 1
            if n < 0:
                break
        candidate = f"Site {label}"
        if candidate not in taken:
            return candidate
        index += 1


@transaction.atomic
def add_site(code: str, name: str) -> Institution:
    """Creates a site with a neutral pseudonym; an existing code with the same name is returned unchanged."""
    existing = Institution.objects.filter(code=code).first()
    if existing is not None:
        if existing.name != name:
            raise ValueError(f"Site code {code!r} already belongs to another site.")
        return existing
    return Institution.objects.create(code=code, name=name, pseudonym=next_pseudonym())
