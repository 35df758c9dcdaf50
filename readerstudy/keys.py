"""The installation's secret keys, read by the settings before Django starts (no Django import here).

A key comes from its environment variable; else from the installation's own key file under `<var>/keys/`; else a
one-machine installation (DEBUG, the demo) makes a random one on its first start and keeps it there (mode 0600), so
a restart, the worker and `manage.py` all use the same key and re-uploads stay idempotent. Production (no DEBUG)
never makes keys of its own: they must be set, or the files present. A build step that needs no lasting key
(`READERSTUDY_ALLOW_INSECURE_KEY`, e.g. the image's collectstatic) gets a throw-away one that is never written, so
no key is baked into an image.
"""

import contextlib
import os
import secrets
from pathlib import Path

KEY_BYTES = 48  # 64 URL-safe characters


class MissingKey(Exception):
    """No key set and none may be made here; the message says what to set."""


def installation_key(env_name: str, path: Path, *, may_create: bool, throwaway: bool, missing: str) -> str:
    """The key named `env_name`: from the environment, the file at `path`, a new file (`may_create`), a throw-away
    value (`throwaway`), or `MissingKey(missing)`."""
    value = os.environ.get(env_name, "").strip()
    if value:
        return value
    if path.exists():
        return _read(path)
    if may_create:
        return _create(path)
    if throwaway:
        return secrets.token_urlsafe(KEY_BYTES)
    raise MissingKey(missing)


def _read(path: Path) -> str:
    value = path.read_text(encoding="ascii").strip()
    if not value:
        raise MissingKey(f"The key file {path} is empty: restore it from a backup, or delete it to make a new key "
                         "(a new de-identification key gives re-uploaded images new codes and UIDs).")
    return value


def _create(path: Path) -> str:
    """Writes a new random key to `path` with mode 0600, atomically: of processes starting at the same time (web,
    worker) exactly one key wins, and every process reads that one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    handle = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(KEY_BYTES) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made the key first: theirs is kept
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return _read(path)
