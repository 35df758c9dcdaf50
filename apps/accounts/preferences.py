"""A reader's own viewer settings, kept on their account so they follow the reader to any workstation.

Only the mouse bindings today: what the left, middle and right buttons do when dragged on an image. The wheel
always scrolls slices, and Shift + left always draws an ROI ellipse, so neither is configurable.
"""

from apps.accounts.models import User

MOUSE_BUTTONS = ("left", "middle", "right")
MOUSE_TOOLS = ("windowLevel", "pan", "zoom", "scroll")
DEFAULT_MOUSE = {"left": "windowLevel", "middle": "pan", "right": "zoom"}


class InvalidPreferences(ValueError):
    pass


def get_preferences(user: User) -> dict:
    """The reader's settings, with the defaults for anything never chosen (or no longer valid)."""
    stored = user.viewer_preferences if isinstance(user.viewer_preferences, dict) else {}
    mouse = stored.get("mouse") if isinstance(stored.get("mouse"), dict) else {}
    return {"mouse": {button: mouse.get(button) if mouse.get(button) in MOUSE_TOOLS else DEFAULT_MOUSE[button]
                      for button in MOUSE_BUTTONS}}


def set_preferences(user: User, data: dict) -> dict:
    """Replaces the settings named in `data` (today only "mouse", all three buttons); raises InvalidPreferences."""
    unknown = set(data) - {"mouse"}
    if unknown:
        raise InvalidPreferences(f"Unknown setting: {', '.join(sorted(unknown))}. Settings: mouse.")
    mouse = data.get("mouse")
    if mouse is None:
        return get_preferences(user)
    if not isinstance(mouse, dict) or set(mouse) != set(MOUSE_BUTTONS):
        raise InvalidPreferences(f"mouse: give one tool for each of {', '.join(MOUSE_BUTTONS)}.")
    bad = {button: tool for button, tool in mouse.items() if tool not in MOUSE_TOOLS}
    if bad:
        raise InvalidPreferences(f"mouse: choose among {', '.join(MOUSE_TOOLS)} (not {', '.join(map(str, bad.values()))}).")
    user.viewer_preferences = {**(user.viewer_preferences or {}), "mouse": {b: mouse[b] for b in MOUSE_BUTTONS}}
    user.save(update_fields=["viewer_preferences"])
    return get_preferences(user)
