"""Creating accounts with a role: admins and coordinators get admin-site access, readers never do."""

from apps.accounts.models import Role, User
from apps.institutions.models import Institution


def create_member(
    username: str,
    password: str,
    role: Role | str,
    institution: Institution | None = None,
    pseudonym: str = "",
    **fields: object,
) -> User:
    """Creates a user whose staff flag follows from the role (least privilege)."""
    role = Role(role)
    if role != Role.ADMIN and institution is None:
        raise ValueError("Coordinators and readers belong to a site.")
    user = User(
        username=username,
        role=role,
        institution=institution,
        pseudonym=pseudonym,
        is_staff=role in (Role.ADMIN, Role.COORDINATOR),
        **fields,
    )
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user
