"""Loaded before Django is configured: tests use the development secret key unless one is given."""

import os

os.environ.setdefault("READERSTUDY_ALLOW_INSECURE_KEY", "1")
os.environ.setdefault("READERSTUDY_SECURE_COOKIES", "0")
