"""Shared test set-up: every test gets its own image store and staging folder, and tasks run eagerly unless a
test starts a real worker."""

import pytest


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.UPLOAD_STAGING_DIR = tmp_path / "staging"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return tmp_path
