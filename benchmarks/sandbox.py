"""A private installation for a benchmark run: its own database, image store and settings, never a real one."""

import os
from pathlib import Path


def private_environment(tmp: Path, database_url: str | None = None) -> dict[str, str]:
    """Sets (and returns, for a server subprocess) the environment of an installation inside `tmp`."""
    env = {
        "DATABASE_URL": database_url or f"sqlite:///{tmp / 'var' / 'readerstudy.sqlite3'}",
        "READERSTUDY_VAR_DIR": str(tmp / "var"),
        "READERSTUDY_MEDIA_ROOT": str(tmp / "media"),
        "READERSTUDY_STATIC_ROOT": str(tmp / "static"),
        "READERSTUDY_SECRET_KEY": "benchmark-only-secret-key",
        "READERSTUDY_SECURE_COOKIES": "0",
        "READERSTUDY_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "readerstudy.settings",
    }
    os.environ.update(env)
    (tmp / "var").mkdir()
    return env
