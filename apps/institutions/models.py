from django.db import models


class Institution(models.Model):
    """A participating site. Readers only ever see the neutral pseudonym, never the name or code."""

    name = models.CharField(max_length=200, unique=True)
    code = models.SlugField(max_length=32, unique=True, help_text="Short code used on the command line.")
    pseudonym = models.CharField(
        max_length=32, unique=True, help_text='Neutral label used in exports, for example "Site A".'
    )
    deny_by_default = models.BooleanField(
        default=False,
        help_text="De-identify this site's uploads deny-by-default (only allow-listed attributes survive), even when "
                  "the deployment's READERSTUDY_DEID_DENY_BY_DEFAULT is off.",
    )
    deface_3d_head = models.BooleanField(
        default=False,
        help_text="Remove the face and ears from this site's 3D head series at upload (Clean Recognizable Visual "
                  "Features, 113102); their DL versions get the same mask.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
