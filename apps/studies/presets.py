"""Window presets set per study (issue 12, item 2): the admin gives the alternatives to the stored window, per
sequence, so that every reader of the study has the same F2 and F3; F1 stays the series' stored window.

A preset is relative to each series' own stored window (a width factor and a level shift in stored widths), as the
reading page's built-in presets are (frontend/src/viewer/windowPresets.js): the conventional and the DL version of
an image have different absolute windows, so an absolute preset would show them differently and tell them apart.
"""

import math

from django.core.exceptions import ValidationError

from apps.imaging.models import Sequence

PRESET_KEYS = ("F2", "F3")  # F1 is always the stored window
FIELDS = {"key", "name", "width", "level"}
MAX_NAME = 40
WIDTH_RANGE = (0.05, 5.0)  # times the stored width
LEVEL_RANGE = (-1.0, 1.0)  # shift of the centre, in stored widths
HELP = (
    "Optional. The window presets every reader of this study gets on F2 and F3, per sequence (F1 stays the series' "
    "stored window; a sequence not listed keeps the built-in presets). Relative to each series' stored window: width "
    f"is a factor of the stored width ({WIDTH_RANGE[0]}-{WIDTH_RANGE[1]}), level shifts the centre by that many stored "
    f"widths ({LEVEL_RANGE[0]} to {LEVEL_RANGE[1]}). Example: "
    '{"T1W_POST": [{"key": "F2", "name": "Enhancement", "width": 0.7, "level": 0.15}]}'
)


def _number(value: object, name: str, bounds: tuple[float, float], where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{where}: {name} must be a number.")
    if not bounds[0] <= value <= bounds[1]:
        raise ValidationError(f"{where}: {name} must lie between {bounds[0]} and {bounds[1]}, not {value}.")
    return float(value)


def validate_window_presets(value: object) -> None:
    """Refuses, with the reason, anything but {sequence: [{key F2|F3, name, width, level}, ...]}."""
    if not isinstance(value, dict):
        raise ValidationError("Window presets are an object with one list of presets per sequence.")
    for sequence, presets in value.items():
        if sequence not in Sequence.values:
            raise ValidationError(f"Unknown sequence {sequence!r}: one of {', '.join(Sequence.values)}.")
        if not isinstance(presets, list) or not 1 <= len(presets) <= len(PRESET_KEYS):
            raise ValidationError(f"{sequence}: a list of 1 to {len(PRESET_KEYS)} presets (F2, F3).")
        keys = []
        for n, preset in enumerate(presets, start=1):
            where = f"{sequence}, preset {n}"
            if not isinstance(preset, dict) or set(preset) != FIELDS:
                raise ValidationError(f"{where}: exactly the fields {', '.join(sorted(FIELDS))}.")
            if preset["key"] not in PRESET_KEYS:
                raise ValidationError(f"{where}: key must be F2 or F3 (F1 is the stored window).")
            keys.append(preset["key"])
            name = preset["name"]
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or not name.isprintable():
                raise ValidationError(f"{where}: name must be printable text of 1 to {MAX_NAME} characters.")
            _number(preset["width"], "width", WIDTH_RANGE, where)
            _number(preset["level"], "level", LEVEL_RANGE, where)
        if len(set(keys)) != len(keys):
            raise ValidationError(f"{sequence}: each key once.")


def for_sequence(presets: dict, sequence: str) -> list[dict] | None:
    """The study's presets of one sequence, F1 (the stored window) first; None where the study sets none, so the
    reading page keeps its built-in ones."""
    chosen = (presets or {}).get(sequence)
    if not chosen:
        return None
    stored = {"key": "F1", "name": "Stored", "width": 1.0, "level": 0.0}
    return [stored, *sorted(({**p, "name": p["name"].strip()} for p in chosen), key=lambda p: p["key"])]
