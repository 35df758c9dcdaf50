"""Creation and update times from one clock, in one place.

`auto_now_add` and `auto_now` each read the clock on their own, and `bulk_create` reads it once per field and
row, so a row's two times (or a score and its audit entry) could differ by microseconds either way, and an
export subtracting them showed negative revision times. These fields take both times from one reading:
on insert (`save`, `create`, `bulk_create`, `update_or_create`) `updated_at` is the very instant of `created_at`;
a later `save` stamps a new time that is never before `created_at`. `bulk_update` and `QuerySet.update` skip
fields' `pre_save`, so a service using them stamps with `touch`. A model with such a pair also carries
`updated_not_before_created`, so the database refuses an update time before the creation time.

`now` is the product's one clock: whatever compares times (a reading session's washout, a score's times) reads it,
so a test that moves it (time-machine) moves every such decision together.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils import timezone


def now() -> datetime:
    """The current time, timezone-aware UTC: the one clock of the product."""
    return timezone.now()


class CreatedAtField(models.DateTimeField):
    """Set once, when the row is inserted; a time a service already put there (one instant shared by several
    rows it writes together) is kept."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def pre_save(self, model_instance: models.Model, add: bool) -> datetime | None:
        value = getattr(model_instance, self.attname)
        if add and value is None:
            value = now()
            setattr(model_instance, self.attname, value)
        return value


class UpdatedAtField(models.DateTimeField):
    """The time of the latest change: the creation instant itself on insert, then never before it."""

    def __init__(self, *args, created_field: str = "created_at", **kwargs) -> None:
        self.created_field = created_field
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.created_field != "created_at":
            kwargs["created_field"] = self.created_field
        return name, path, args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> datetime:
        created = getattr(model_instance, self.created_field)
        if add:
            if created is None:
                created = now()
                setattr(model_instance, self.created_field, created)
            value = created
        else:
            value = not_before(now(), created)
        setattr(model_instance, self.attname, value)
        return value


def not_before(moment: datetime, created: datetime | None) -> datetime:
    """`moment`, or the creation time when the clock reads earlier (another host's clock, a clock step back)."""
    return moment if created is None or moment >= created else created


def touch(instance: models.Model, moment: datetime, created_field: str = "created_at",
          updated_field: str = "updated_at") -> None:
    """Stamps an update at `moment` (never before creation) for writes that skip `pre_save` (`bulk_update`)."""
    setattr(instance, updated_field, not_before(moment, getattr(instance, created_field)))


def updated_not_before_created(model_name: str, created_field: str = "created_at",
                               updated_field: str = "updated_at") -> models.CheckConstraint:
    """The database's own guarantee that a revision time (updated minus created) is never negative."""
    return models.CheckConstraint(
        condition=models.Q(**{f"{updated_field}__gte": models.F(created_field)}),
        name=f"{model_name}_{updated_field}_not_before_{created_field}",
    )
