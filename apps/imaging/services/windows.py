"""Display windows of stored series.

A series' window comes from percentiles of its whole volume (`blinding.display_window`). It is computed once,
by the worker, when the series is stored (ingest, enhancement), so that no reader's request pays for reading
the volume; series stored before that are filled in by `backfill` (management command `backfill_windows`).
"""

from django.db.models import Q, QuerySet

from apps.imaging import blinding
from apps.imaging.models import Series
from apps.imaging.services import storage

Window = tuple[float, float]


def stored_window(series: Series) -> Window:
    """The window computed from the instances in the image store, one instance in memory at a time."""
    return blinding.display_window(storage.read_dataset(instance) for instance in series.instances.all())


def save_window(series: Series, window: Window) -> None:
    series.window_center, series.window_width = window
    Series.objects.filter(pk=series.pk).update(window_center=window[0], window_width=window[1])


def series_window(series: Series) -> Window:
    """The stored window; computed from the image store and saved for a series stored without one."""
    if series.window_center is None or series.window_width is None:
        save_window(series, stored_window(series))
    return series.window_center, series.window_width


def without_window() -> QuerySet[Series]:
    """Series with instances but no window (stored before windows were computed at storing time)."""
    missing = Q(window_center__isnull=True) | Q(window_width__isnull=True)
    return Series.objects.filter(missing, instances__isnull=False).distinct()


def backfill() -> int:
    """Computes and saves the window of every series that lacks one; returns how many were filled in."""
    count = 0
    for series in without_window().iterator():
        save_window(series, stored_window(series))
        count += 1
    return count
