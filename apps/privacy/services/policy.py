"""What de-identification a site's uploads get beyond the basic profile: the deployment's setting or the site's own."""

from django.conf import settings


def deny_by_default(site) -> bool:
    """Deny-by-default for every site when the deployment says so, else for the sites that asked for it."""
    return bool(settings.DEID_DENY_BY_DEFAULT or site.deny_by_default)


def defaces_3d_heads(site) -> bool:
    """Faces and ears are removed from 3D head series only for the sites that asked for it."""
    return bool(site.deface_3d_head)
