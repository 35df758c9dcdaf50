"""Durations as people say them."""

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def in_minutes(delta: timedelta) -> str:
    """`timedelta(minutes=15)` -> "15 minutes" (the lockout page)."""
    minutes = max(1, round(delta.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
