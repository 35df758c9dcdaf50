"""Recording what de-identification did, at ingest, inside the transaction that stores the series.

Only tags, action names, option codes and counts are kept; a value never is.
"""

from collections import Counter
from collections.abc import Iterable

from django.conf import settings

from apps.imaging import deidentify
from apps.imaging.deid_allow_list import ALLOW_LIST_NAME, allow_list_sha256
from apps.privacy.models import SeriesDeidentification


def tag_key(tag: int) -> str:
    """'00100010'; a private group is recorded as 'ggggFFFF' (one key per group, no element, no creator)."""
    return f"{tag:08X}"


def record_series(
    batch, series, results: Iterable[deidentify.DeidResult], *, deny_by_default: bool = False
) -> SeriesDeidentification | None:
    """Adds the actions and codes of the stored instances of one series of one upload to its evidence row, with the
    allow-list applied when de-identification was deny-by-default."""
    results = list(results)
    if not results:
        return None
    actions: Counter = Counter()
    codes: Counter = Counter()
    for result in results:
        actions.update(result.actions)
        codes.update(result.method_codes)
    record, _ = SeriesDeidentification.objects.select_for_update().get_or_create(
        batch=batch, series=series,
        defaults={
            "instances": 0, "date_mode": settings.DEID_DATE_MODE, "table": deidentify.action_table()["source"],
            "table_sha256": deidentify.action_table_sha256(),
            "allow_list": ALLOW_LIST_NAME if deny_by_default else "",
            "allow_list_sha256": allow_list_sha256() if deny_by_default else "",
        },
    )
    merged = {key: dict(value) for key, value in record.action_counts.items()}
    for (tag, action), count in actions.items():
        per_tag = merged.setdefault(tag_key(tag), {})
        per_tag[action] = per_tag.get(action, 0) + count
    merged_codes = dict(record.method_codes)
    for code, count in codes.items():
        merged_codes[code] = merged_codes.get(code, 0) + count
    record.instances += len(results)
    record.action_counts = merged
    record.method_codes = merged_codes
    record.save(update_fields=["instances", "action_counts", "method_codes"])
    return record


def add_option(batch, series, code: str, instances: int) -> None:
    """Counts an option applied later to stored instances of a series (e.g. Clean Pixel Data on blanked images)."""
    record = SeriesDeidentification.objects.select_for_update().filter(series=series, batch=batch).first()
    if record is None:
        return
    record.method_codes = {**record.method_codes, code: record.method_codes.get(code, 0) + instances}
    record.save(update_fields=["method_codes"])
