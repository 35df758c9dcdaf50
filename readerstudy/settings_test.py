"""Settings for the test suite: the production settings with keys of this test run and plain-HTTP cookies."""

import os
import secrets
import tempfile
from pathlib import Path

# Random keys of this run, in the environment so that the processes a test starts (a worker, a command) share them.
os.environ.setdefault("READERSTUDY_SECRET_KEY", secrets.token_urlsafe(48))
os.environ.setdefault("READERSTUDY_DEID_SECRET", secrets.token_urlsafe(48))
os.environ.setdefault("READERSTUDY_SECURE_COOKIES", "0")

from readerstudy.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file rather than memory, so a test can start a real worker process against it; one per test run.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"readerstudy-test-{os.getpid()}.sqlite3")
    }

# WhiteNoise expects collected static files; tests serve the built viewer through the finders instead.
STATIC_ROOT = Path(tempfile.gettempdir()) / "readerstudy-test-static"  # noqa: F405
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
