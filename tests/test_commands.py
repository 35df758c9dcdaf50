"""Management commands are entry points too: bad arguments and bad files give a clear error and change nothing."""

import io
import zipfile

import pytest
from django.core.management import CommandError, call_command

from apps.imaging.models import Case, UploadBatch
from apps.institutions.models import Institution
from apps.institutions.services import add_site

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out, **options)
    return out.getvalue()


def test_add_site_creates_a_neutral_pseudonym_and_is_idempotent():
    assert "shown as Site A" in run("add_site", "north", "North Hospital")
    assert "shown as Site A" in run("add_site", "north", "North Hospital")
    assert Institution.objects.count() == 1


@pytest.mark.parametrize("code, name, message", [
    ("no spaces", "X", "Cannot add site"),
    ("../etc", "X", "Cannot add site"),
    ("north", "Another Hospital", "already belongs to another site"),
])
def test_add_site_refuses_bad_codes_and_conflicts(code, name, message):
    add_site("north", "North Hospital")
    with pytest.raises(CommandError, match=message):
        run("add_site", code, name)
    assert Institution.objects.count() == 1


def test_import_dicom_refuses_unknown_site_and_missing_path(tmp_path):
    with pytest.raises(CommandError, match="Unknown site 'nowhere'"):
        run("import_dicom", str(tmp_path), site="nowhere")
    add_site("north", "North Hospital")
    with pytest.raises(CommandError, match="does not exist"):
        run("import_dicom", str(tmp_path / "missing"), site="north")
    assert not UploadBatch.objects.exists()


def test_import_dicom_of_an_empty_folder_says_so(tmp_path):
    add_site("north", "North Hospital")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match="no files"):
        run("import_dicom", str(tmp_path / "empty"), site="north")
    assert UploadBatch.objects.get().status == "failed"


def test_import_dicom_of_a_bomb_archive_is_refused(tmp_path, settings):
    add_site("north", "North Hospital")
    settings.INGEST_MAX_ARCHIVE_RATIO = 50
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("a.dcm", b"\0" * (20 * 1024 * 1024))
    with pytest.raises(CommandError, match="Archive refused"):
        run("import_dicom", str(archive), site="north")
    assert not Case.objects.exists()


def test_import_case_metadata_refuses_missing_file_and_unknown_site(tmp_path):
    with pytest.raises(CommandError, match="Unknown site"):
        run("import_case_metadata", str(tmp_path / "x.csv"), site="nowhere")
    add_site("north", "North Hospital")
    with pytest.raises(CommandError, match="is not a file"):
        run("import_case_metadata", str(tmp_path / "x.csv"), site="north")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\xff" * 1000)
    with pytest.raises(CommandError, match="Nothing was changed"):
        run("import_case_metadata", str(bad), site="north")
