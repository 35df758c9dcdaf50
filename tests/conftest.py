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
    return tmp_path


@pytest.fixture(autouse=True)
def eager_tasks():
    """Tasks run in-process; tests of the real worker start one and switch this off themselves."""
    from readerstudy.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture
def one_torch_thread():
    """The test machines are shared: keep torch on one thread (for tests that run a model)."""
    import torch  # only where asked: most tests never load it

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
