"""The keys of an installation: a one-machine installation (DEBUG, the demo's default) makes its own random Django
secret key and de-identification key on first start, keeps them under var/keys (mode 0600, never in the repository)
and reuses them on every later start; production (no DEBUG) needs them from the environment or those files.

Each case imports the settings in a fresh process with a clean environment, as `manage.py` and the worker do."""

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from apps.imaging import deidentify

REPO = Path(__file__).resolve().parents[1]
PRINT_KEYS = ("import json; from django.conf import settings; "
              "print(json.dumps([settings.SECRET_KEY, settings.DEID_SECRET]))")
KEY_VARIABLES = ("READERSTUDY_SECRET_KEY", "READERSTUDY_DEID_SECRET", "READERSTUDY_ALLOW_INSECURE_KEY",
                 "READERSTUDY_DEBUG", "READERSTUDY_VAR_DIR", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")


def start(var_dir: Path, **env) -> subprocess.CompletedProcess:
    """Imports the production settings in a new process, the way `manage.py` does, and prints the two keys."""
    clean = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    clean.update(READERSTUDY_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="readerstudy.settings", **env)
    code = f"import django; django.setup(); {PRINT_KEYS}"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True,
                          timeout=120)


def keys(var_dir: Path, **env) -> tuple[str, str]:
    done = start(var_dir, **env)
    assert done.returncode == 0, done.stderr
    secret_key, deid_secret = json.loads(done.stdout.strip().splitlines()[-1])
    return secret_key, deid_secret


def tracked_text() -> str:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    texts = []
    for name in files.decode().split("\0"):
        path = REPO / name
        if name and path.is_file() and path.stat().st_size < 2_000_000:
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def test_a_demo_installation_makes_its_own_keys_and_keeps_them(tmp_path):
    first = keys(tmp_path / "a" / "var", READERSTUDY_DEBUG="1")
    secret_key, deid_secret = first
    assert len(secret_key) >= 50 and len(deid_secret) >= 43
    assert secret_key != deid_secret, "the de-identification key is not the (rotatable) Django key"
    for name, value in (("secret-key", secret_key), ("deid-secret", deid_secret)):
        path = tmp_path / "a" / "var" / "keys" / name
        assert path.read_text().strip() == value
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "a" / "var" / "keys").stat().st_mode) == 0o700

    assert keys(tmp_path / "a" / "var", READERSTUDY_DEBUG="1") == first, "a restart keeps both keys"
    assert keys(tmp_path / "a" / "var") == first, "production settings read the files the installation made"

    other = keys(tmp_path / "b" / "var", READERSTUDY_DEBUG="1")
    assert other[0] != secret_key and other[1] != deid_secret, "two installations never share a key"


# The key every demo used before installations made their own: public, in the repository's history.
OLD_PUBLIC_KEY = "insecure-local-development-key-do-not-use-in-production"


def test_no_key_written_in_the_repository_is_the_demos_key(tmp_path):
    secret_key, deid_secret = keys(tmp_path / "var", READERSTUDY_DEBUG="1")
    text = tracked_text()
    assert secret_key not in text and deid_secret not in text
    assert OLD_PUBLIC_KEY not in (REPO / "readerstudy" / "settings.py").read_text()
    # What the probe did with the public key: hash a known demo patient ID and look for that patient's case.
    site, patient = "sitealpha", "DEMO-ALPHA-0001"
    assert deidentify.patient_key(patient, site, OLD_PUBLIC_KEY) != deidentify.patient_key(patient, site, deid_secret)
    assert deidentify.remap_uid("1.2.3.4", OLD_PUBLIC_KEY) != deidentify.remap_uid("1.2.3.4", deid_secret)
    shift = hmac.new(deid_secret.encode(), f"date-shift:{patient}".encode(), hashlib.sha256).hexdigest()
    assert shift not in text


def test_production_refuses_to_start_without_keys(tmp_path):
    done = start(tmp_path / "var")
    assert done.returncode != 0
    assert "READERSTUDY_SECRET_KEY" in done.stderr
    assert not (tmp_path / "var" / "keys").exists(), "production never makes keys of its own"

    done = start(tmp_path / "var", READERSTUDY_SECRET_KEY="k" * 50)
    assert done.returncode != 0
    assert "READERSTUDY_DEID_SECRET" in done.stderr and "same value" in done.stderr


def test_keys_from_the_environment_win_and_nothing_is_written(tmp_path):
    assert keys(tmp_path / "var", READERSTUDY_SECRET_KEY="s" * 50, READERSTUDY_DEID_SECRET="d" * 50) == (
        "s" * 50, "d" * 50)
    assert keys(tmp_path / "var", READERSTUDY_DEBUG="1", READERSTUDY_SECRET_KEY="s" * 50,
                READERSTUDY_DEID_SECRET="d" * 50) == ("s" * 50, "d" * 50)
    assert not (tmp_path / "var" / "keys").exists()


def test_a_build_step_gets_throwaway_keys_that_are_never_stored(tmp_path):
    """`READERSTUDY_ALLOW_INSECURE_KEY=1` (the image build's collectstatic): random per process, not written, so
    no key is baked into an image."""
    first = keys(tmp_path / "var", READERSTUDY_ALLOW_INSECURE_KEY="1")
    assert first != keys(tmp_path / "var", READERSTUDY_ALLOW_INSECURE_KEY="1")
    assert not (tmp_path / "var" / "keys").exists()


def test_two_processes_starting_at_once_agree_on_the_keys(tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    clean.update(READERSTUDY_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="readerstudy.settings",
                 READERSTUDY_DEBUG="1")
    code = f"import django; django.setup(); {PRINT_KEYS}"
    runs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=clean, stdout=subprocess.PIPE, text=True)
            for _ in range(4)]
    outputs = {run.communicate(timeout=120)[0].strip().splitlines()[-1] for run in runs}
    assert len(outputs) == 1


@pytest.mark.django_db
def test_the_test_suite_itself_uses_no_key_from_the_repository(settings):
    assert settings.DEID_SECRET != settings.SECRET_KEY
    text = tracked_text()
    assert settings.SECRET_KEY not in text and settings.DEID_SECRET not in text
