from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    COORDINATOR = "coordinator", "Coordinator"
    READER = "reader", "Reader"


class ReaderStudyUserManager(UserManager):
    """Superusers created on the command line are admins, so they need no site."""

    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person with exactly one role; coordinators and readers belong to one site."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.READER)
    institution = models.ForeignKey(
        "institutions.Institution", null=True, blank=True, on_delete=models.PROTECT, related_name="members"
    )
    pseudonym = models.CharField(
        max_length=32, blank=True, help_text='Reader label in exports, for example "R1".'
    )
    viewer_preferences = models.JSONField(
        default=dict, blank=True,
        help_text="The reader's own viewer settings (apps.accounts.preferences), such as what each mouse button does.",
    )

    objects = ReaderStudyUserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role="admin") | models.Q(institution__isnull=False),
                name="site_member_has_institution",
            ),
            models.UniqueConstraint(
                fields=["pseudonym"], condition=~models.Q(pseudonym=""), name="unique_reader_pseudonym"
            ),
        ]

    def clean(self) -> None:
        super().clean()
        if self.role != Role.ADMIN and self.institution_id is None:
            raise ValidationError({"institution": "Coordinators and readers belong to a site."})

    @property
    def is_admin_role(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser

    @property
    def is_coordinator(self) -> bool:
        return self.role == Role.COORDINATOR

    @property
    def is_reader(self) -> bool:
        return self.role == Role.READER
