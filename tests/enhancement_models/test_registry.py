"""The model registry (issue 11, item 1): the built-in CE U-Net is listed and cannot be deleted or retired; admins
register ONNX models, which are tried on a phantom series and refused with a reason when broken; a registered
model never changes; nobody else registers or retires."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db.models import ProtectedError
from django.urls import reverse

from apps.enhancement_models import services
from apps.enhancement_models.models import EnhancementModel
from apps.imaging.services import enhancement
from tests.enhancement_models.conftest import register
from tests.enhancement_models.onnx_models import MemoryHungry, NonFinite, ReturnsInput, WrongShape, onnx_bytes
from tests.factories import CoordinatorFactory, ReaderFactory, SeriesFactory
from worker.enhance import shipped
from worker.enhance.contract import InputContract

CARD_OBJECT = services.ModelCard("testing", "none", "CC0-1.0")

pytestmark = pytest.mark.django_db


def built_in(version: str = shipped.MODEL_VERSION) -> EnhancementModel:
    return EnhancementModel.objects.get(built_in=True, version=version)


def test_every_shipped_model_is_in_the_registry_as_built_in(client, admin_user):
    client.force_login(admin_user)
    body = client.get(reverse("enhancement-model-list")).json()
    listed = {row["version"]: row for row in body["results"] if row["built_in"]}
    assert sorted(listed) == shipped.shipped_versions()
    row = listed[shipped.MODEL_VERSION]
    digest = hashlib.sha256(shipped.weights_path().read_bytes()).hexdigest()
    assert (row["runtime"], row["sha256"], row["reference"]) == ("torch", digest, shipped.MODEL_VERSION)
    assert (row["slices"], row["normalisation"], row["max_matrix"], row["context_input"]) == (3, "p99", 768, True)
    assert row["intended_use"] and row["training_data"] and row["licence"]
    assert services.default_model() == built_in()


def test_the_built_in_model_cannot_be_deleted_or_retired(client, admin_user):
    model = built_in()
    client.force_login(admin_user)
    assert client.delete(reverse("enhancement-model-detail", args=[model.pk])).status_code == 405
    answer = client.post(reverse("enhancement-model-retire", args=[model.pk]), {"reason": "old"})
    assert answer.status_code == 400 and "cannot be retired" in answer.json()["detail"]
    with pytest.raises(ProtectedError):
        model.delete()
    model.retired = True
    with pytest.raises(ValidationError):
        model.save()
    model.refresh_from_db()
    assert not model.retired
    assert client.get(reverse("admin:enhancement_models_enhancementmodel_delete", args=[model.pk])).status_code == 403


def test_an_admin_registers_an_onnx_model_that_is_tried_stored_and_audited(client, admin_user, box_onnx):
    client.force_login(admin_user)
    answer = register(client, box_onnx, slices=3, normalisation="p99", max_matrix=512)
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    model = EnhancementModel.objects.get(pk=body["id"])
    assert (model.name, model.version, model.runtime, model.built_in) == ("Box denoiser", "1.0", "onnx", False)
    assert model.sha256 == hashlib.sha256(box_onnx).hexdigest() == body["sha256"] and model.size == len(box_onnx)
    assert model.file.read() == box_onnx and model.registered_by == admin_user
    assert model.check_report["ok"] and model.check_report["seconds"] > 0
    assert model.check_report["runtime"].startswith("onnxruntime")
    assert body["reference"] == "Box denoiser@1.0"
    entry = LogEntry.objects.get_for_object(model).get()
    assert entry.action == LogEntry.Action.CREATE and entry.actor == admin_user
    assert entry.changes_dict["sha256"][1] == model.sha256

    again = register(client, box_onnx)
    assert again.status_code == 400 and again.json()["code"] == "duplicate_version"
    same_file = register(client, box_onnx, version="1.1")
    assert same_file.status_code == 400 and same_file.json()["code"] == "duplicate"
    assert EnhancementModel.objects.filter(built_in=False).count() == 1


def test_a_registered_model_never_changes(client, admin_user, box_onnx):
    client.force_login(admin_user)
    model = EnhancementModel.objects.get(pk=register(client, box_onnx).json()["id"])
    for field, value in [("file", "enhancement-models/other.onnx"), ("sha256", "0" * 64), ("slices", 5),
                         ("normalisation", "none"), ("version", "2.0")]:
        changed = EnhancementModel.objects.get(pk=model.pk)
        setattr(changed, field, value)
        with pytest.raises(ValidationError, match="never changes"):
            changed.save()
    assert client.patch(reverse("enhancement-model-detail", args=[model.pk]), {"version": "2"}).status_code == 405


def hostile(kind: str, box_onnx: bytes) -> bytes:
    return {
        "not-onnx": b"PK\x03\x04 this is a zip, or a pickle, anything but ONNX" * 20,
        "pickle": b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94.",
        "wrong-shape": onnx_bytes(WrongShape()),
        "returns-input": onnx_bytes(ReturnsInput()),
        "non-finite": onnx_bytes(NonFinite()),
        "slow": box_onnx,
        "oversized": box_onnx,
        "memory-hungry": onnx_bytes(MemoryHungry()),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "code", "status", "words"),
    [
        ("not-onnx", "not_onnx", 400, "not an ONNX model"),
        ("pickle", "not_onnx", 400, "not an ONNX model"),
        ("oversized", "oversized", 413, "limit"),
        ("wrong-shape", "wrong_output_shape", 400, "not [4, 1, 96, 96] (the enhanced centre slice)"),
        ("returns-input", "returns_input", 400, "returned its input"),
        ("non-finite", "non_finite", 400, "NaN or infinite"),
        ("slow", "too_slow", 400, "time limit of 1e-06 s"),
        ("memory-hungry", "too_much_memory", 400, "more memory than the limit"),
    ],
)
def test_each_broken_upload_is_refused_with_its_reason_and_nothing_is_stored(
    client, admin_user, settings, box_onnx, kind, code, status, words
):
    settings.MAX_MODEL_BYTES = len(box_onnx) - 1 if kind == "oversized" else settings.MAX_MODEL_BYTES
    settings.MODEL_CHECK_SECONDS = 1e-6 if kind == "slow" else settings.MODEL_CHECK_SECONDS
    settings.MODEL_CHECK_MEMORY_MB = 1536  # the hungry model asks for ~3 GB per tile; the others run well within
    client.force_login(admin_user)
    answer = register(client, hostile(kind, box_onnx), name=f"Hostile {kind}")
    assert answer.status_code == status, answer.content
    assert answer.json()["code"] == code and words in answer.json()["detail"], answer.json()
    assert not EnhancementModel.objects.filter(built_in=False).exists()
    assert not default_storage.exists("enhancement-models") or not default_storage.listdir("enhancement-models")[1]


def test_an_oversized_request_is_refused_before_its_body_is_read(client, admin_user, settings):
    settings.MAX_MODEL_BYTES = 10
    client.force_login(admin_user)
    answer = client.post(reverse("enhancement-model-list"), data=b"x", content_type="application/octet-stream",
                         CONTENT_LENGTH=str(5 * 1024 * 1024))
    assert answer.status_code == 413 and answer.json()["code"] == "oversized"


@pytest.mark.parametrize("role", ["coordinator", "reader", "anonymous"])
def test_only_admins_register_or_retire(client, box_onnx, admin_user, role):
    client.force_login(admin_user)
    model = EnhancementModel.objects.get(pk=register(client, box_onnx).json()["id"])
    client.logout()
    user = {"coordinator": CoordinatorFactory, "reader": ReaderFactory}.get(role, lambda: None)()
    if user is not None:
        client.force_login(user)
    expected = 401 if user is None else 403
    assert register(client, box_onnx, version="9").status_code == expected
    assert client.post(reverse("enhancement-model-retire", args=[model.pk])).status_code == expected
    listing = client.get(reverse("enhancement-model-list")).status_code
    assert listing == (200 if role == "coordinator" else expected)  # staff read the registry; readers never
    assert EnhancementModel.objects.filter(built_in=False).count() == 1
    with pytest.raises(PermissionDenied):
        services.retire_model(model, user or AnonymousUser())
    with pytest.raises(PermissionDenied):
        services.register_model_bytes(user or AnonymousUser(), box_onnx, name="x", version="2", card=CARD_OBJECT,
                                      contract=InputContract())


def test_a_retired_model_is_kept_but_no_new_job_runs_it(client, admin_user, box_onnx, settings):
    client.force_login(admin_user)
    model = EnhancementModel.objects.get(pk=register(client, box_onnx).json()["id"])
    settings.ENHANCE_MODEL = "Box denoiser@1.0"
    assert services.default_model() == model
    answer = client.post(reverse("enhancement-model-retire", args=[model.pk]), {"reason": "superseded by 1.1"})
    assert answer.status_code == 200 and answer.json()["retired"] and answer.json()["retired_by"] == admin_user.username
    model.refresh_from_db()
    assert model.retired_reason == "superseded by 1.1"
    with pytest.raises(ValueError, match="retired"):
        services.default_model()
    with pytest.raises(ValueError, match="retired"):
        enhancement.request_enhancement(SeriesFactory(), model=model)
    changes = LogEntry.objects.get_for_object(model).order_by("pk").last().changes_dict
    assert changes["retired"] == ["False", "True"]


def test_an_unknown_model_in_the_setting_says_what_exists(settings):
    settings.ENHANCE_MODEL = "Nobody@0.1"
    with pytest.raises(ValueError, match="unknown model 'Nobody@0.1'; registered: none"):
        services.default_model()


def test_the_admin_registration_form_shows_the_reason_of_a_refusal(client, admin_user):
    client.force_login(admin_user)
    url = reverse("admin:enhancement_models_enhancementmodel_add")
    assert client.get(url).status_code == 200
    upload = io.BytesIO(b"not a model at all")
    upload.name = "model.onnx"
    answer = client.post(url, {"name": "Admin upload", "version": "1", "intended_use": "x", "training_data": "y",
                               "licence": "z", "file": upload, "slices": 3, "normalisation": "p99",
                               "max_matrix": 768, "pad_multiple": 1})
    assert answer.status_code == 200 and "Refused (not_onnx)" in answer.content.decode()
    assert not EnhancementModel.objects.filter(built_in=False).exists()


def test_web_processes_load_the_registry_without_torch_or_onnxruntime(settings):
    """Registration tries a model in a child process; the web process itself never imports the engines."""
    code = ("import sys, django; django.setup(); from django.urls import get_resolver; get_resolver().url_patterns; "
            "from django.contrib import admin; admin.autodiscover(); import apps.enhancement_models.services; "
            "loaded = [m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules]; assert not loaded, loaded")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "readerstudy.settings_test"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=settings.BASE_DIR)


def test_the_readme_example_exports_the_built_in_model_and_registers_it(client, admin_user, tmp_path, settings):
    """`python -m worker.enhance.onnx_export`, then the upload with the contract it prints."""
    path = tmp_path / "ceunet-c16-v2.onnx"
    done = subprocess.run([sys.executable, "-m", "worker.enhance.onnx_export", str(path)], cwd=settings.BASE_DIR,
                          capture_output=True, text=True, check=True)
    printed = done.stdout.splitlines()[-1]
    assert printed == ("register it with: slices=3 normalisation=p99 max_matrix=768 pad_multiple=16 "
                       "context_input=True")
    fields = dict(item.split("=") for item in printed.split(": ", 1)[1].split())
    client.force_login(admin_user)
    answer = register(client, path.read_bytes(), name="CE U-Net (ONNX export)", version="c16-v2", **fields)
    assert answer.status_code == 201, answer.json()
    assert answer.json()["context_input"] is True and answer.json()["pad_multiple"] == 16
    assert hashlib.sha256(path.read_bytes()).hexdigest() in done.stdout
