from django.db import models


class Institution(models.Model):
    """A participating site. Readers only ever see the neutral pseudonym, never the name or code."""

    name = models.CharField(max_length=200, unique=True)
    code = models.SlugField(max_length=32, unique=True, help_text="Short code used on the command line.")
    pseudonym = models.CharField(
        max_length=32, unique=True, help_text='Neutral label used in exports, for example "Site A".'
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
