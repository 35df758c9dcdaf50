"""Registering, retiring and finding enhancement models. No torch here: web processes import it.

Registration (admins only) takes an uploaded ONNX file of at most ``READERSTUDY_MAX_MODEL_BYTES``, hashes it, and
tries it in a child process (``worker.enhance.model_check``) on a generated phantom series within
``READERSTUDY_MODEL_CHECK_SECONDS``: a file that is not ONNX, does not take the inputs of its contract, returns
the wrong shape, non-finite values or its input, or is too slow is refused with a code and a reason, and nothing
is stored. The file is never unpickled or executed as Python. Registrations and retirements reach the audit
trail (``apps.audit.registry``) with the admin as actor.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.access import is_admin
from apps.accounts.models import User
from apps.enhancement_models.models import EnhancementModel, Runtime
from worker.enhance import shipped
from worker.enhance.contract import BUILT_IN_CONTRACT, InputContract

logger = logging.getLogger(__name__)

BUILT_IN_NAME = "CE U-Net (built in)"
BUILT_IN_CARD = {
    "intended_use": (
        "Research reader studies of DL image enhancement on this platform: the DL-enhanced half of conventional/DL "
        "pairs of axial T2W, T2 FLAIR and post-contrast 3D T1W brain MR series. Not for clinical diagnosis. "
        "Model card: worker/enhance/MODEL_CARD.md."
    ),
    "training_data": (
        "Synthetic phantoms only: MNI152 2009a tissue templates (bundled with nilearn) with a generated glioma, "
        "closed-form T2W/FLAIR/T1W-post signal at 1.5 T and 3 T, k-space noise and undersampling "
        "(worker/enhance/phantom.py, degrade.py, synth.py). No patient data."
    ),
    "licence": "Ships with readerstudy, under the project's licence; MNI templates free for research with attribution.",
}
# What the child process may take beyond the model run itself: starting Python, importing torch and onnxruntime.
CHECK_STARTUP_S = 120.0
REFUSAL_HTTP_STATUS = {"oversized": 413}


class RegistrationRefused(Exception):
    """The upload is not registered; ``code`` says why in one word, the message in a sentence."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class ModelIntegrityError(RuntimeError):
    """A stored model file no longer has the sha256 it was registered with: it is not run."""


@dataclass(frozen=True)
class ModelCard:
    intended_use: str
    training_data: str
    licence: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_built_in_models(using: str = "default") -> list[EnhancementModel]:
    """One built-in row per shipped weights file (``worker/enhance/weights``); idempotent, run after migrate."""
    rows = []
    for version in shipped.shipped_versions():
        path = shipped.weights_path(version)
        digest = _sha256(path)
        row, created = EnhancementModel.objects.using(using).get_or_create(
            name=BUILT_IN_NAME, version=version,
            defaults=dict(
                runtime=Runtime.TORCH, built_in=True, sha256=digest, size=path.stat().st_size,
                **BUILT_IN_CARD, **BUILT_IN_CONTRACT.as_dict(),
                check_report={"ok": True, "built_in": True, "weights": f"worker/enhance/weights/{path.name}"},
            ),
        )
        if created:
            logger.info("Built-in model %s registered (sha256 %s)", version, digest)
        elif row.sha256 != digest:
            logger.error("Shipped weights %s changed under the same version (sha256 %s, registered %s): jobs "
                         "refuse to run it", version, digest, row.sha256)
        rows.append(row)
    return rows


def available_models() -> QuerySet[EnhancementModel]:
    """Models a new job may use: every one not retired."""
    return EnhancementModel.objects.filter(retired=False)


def find_model(reference: str) -> EnhancementModel:
    """A model by the way a setting names it: a built-in version (``ceunet-c16-v2``) or ``NAME@VERSION`` of a
    registered one; ``ValueError`` saying what exists, for an unknown one or a retired one."""
    if "@" in reference:
        name, version = (part.strip() for part in reference.rsplit("@", 1))
        model = EnhancementModel.objects.filter(name=name, version=version).first()
        if model is None:
            known = ", ".join(f"{m.name}@{m.version}" for m in available_models().filter(built_in=False)) or "none"
            raise ValueError(f"unknown model {reference!r}; registered: {known}")
    else:
        shipped.weights_path(reference)  # ValueError "unknown model version ...; shipped: ..."
        model = EnhancementModel.objects.filter(built_in=True, version=reference).first()
        if model is None:
            ensure_built_in_models()
            model = EnhancementModel.objects.get(built_in=True, version=reference)
    if model.retired:
        raise ValueError(f"model {model} is retired: {model.retired_reason or 'no reason given'}")
    return model


def default_model() -> EnhancementModel:
    """The model this deployment runs on upload (``READERSTUDY_ENHANCE_MODEL``; empty: the built-in default)."""
    return find_model(settings.ENHANCE_MODEL or shipped.MODEL_VERSION)


def model_bytes(model: EnhancementModel) -> bytes:
    """The model file's bytes, checked against the registered sha256 (``ModelIntegrityError`` otherwise)."""
    if model.built_in:
        data = shipped.weights_path(model.version).read_bytes()
    else:
        with model.file.open("rb") as source:
            data = source.read()
    if hashlib.sha256(data).hexdigest() != model.sha256:
        raise ModelIntegrityError(f"The file of model {model} does not have its registered sha256; it is not run.")
    return data


@functools.lru_cache(maxsize=1)
def _phantom_npz() -> bytes:
    """The phantom series every model is tried on (made once per process: a few seconds)."""
    from worker.enhance.phantom import noisy_series  # numpy, scipy and nilearn only

    volume, params = noisy_series()
    buffer = io.BytesIO()
    np.savez(buffer, volume=volume, params=np.asarray(params, dtype=np.float64))
    return buffer.getvalue()


def try_model(path: Path, contract: InputContract) -> dict:
    """Runs the registration check on the file at ``path`` in a child process; its report (``ok``, ``code``,
    ``reason``, timings, QA of the phantom run). The child is killed when it runs far over the time limit."""
    limit = float(settings.MODEL_CHECK_SECONDS)
    with tempfile.TemporaryDirectory(prefix="readerstudy-model-check-") as folder:
        phantom = Path(folder) / "phantom.npz"
        phantom.write_bytes(_phantom_npz())
        command = [
            sys.executable, "-m", "worker.enhance.model_check", str(path), "--contract",
            json.dumps(contract.as_dict()), "--time-limit", str(limit), "--phantom", str(phantom), "--threads", "1",
            "--memory-limit-mb", str(settings.MODEL_CHECK_MEMORY_MB),
        ]
        try:
            done = subprocess.run(command, cwd=settings.BASE_DIR, capture_output=True, text=True,
                                  timeout=limit + CHECK_STARTUP_S, check=False)
        except subprocess.TimeoutExpired:
            return {"ok": False, "code": "too_slow",
                    "reason": f"the model did not finish the phantom series within the time limit of {limit:g} s"}
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict) or "ok" not in report:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1][:300]
        logger.warning("Model check failed with exit status %s: %s", done.returncode, done.stderr[-2000:])
        return {"ok": False, "code": "failed",
                "reason": f"the model could not be tried (the check stopped with status {done.returncode}: {last})"}
    return report


def _spool(upload, folder: Path) -> tuple[Path, str, int]:
    """Copies the upload to ``folder`` while hashing it; refuses it past the size limit."""
    limit = settings.MAX_MODEL_BYTES
    if upload.size is not None and upload.size > limit:
        raise RegistrationRefused("oversized", f"the file has {upload.size} bytes; the limit is {limit} bytes")
    digest, size = hashlib.sha256(), 0
    path = folder / "model.onnx"
    with open(path, "wb") as target:
        for chunk in upload.chunks():
            size += len(chunk)
            if size > limit:
                raise RegistrationRefused("oversized", f"the file has over {limit} bytes; the limit is {limit} bytes")
            digest.update(chunk)
            target.write(chunk)
    return path, digest.hexdigest(), size


def register_model(
    user: User, upload, *, name: str, version: str, card: ModelCard, contract: InputContract
) -> EnhancementModel:
    """Registers an uploaded ONNX file (any object with ``chunks()`` and ``size``, e.g. Django's UploadedFile)
    after trying it on the phantom series. ``PermissionDenied`` for anyone but an admin; ``RegistrationRefused``
    with a code and reason for an upload that is not registered (then nothing is stored)."""
    if not is_admin(user):
        raise PermissionDenied("Only admins register enhancement models.")
    problems = contract.problems()
    if problems:
        raise RegistrationRefused("bad_contract", "; ".join(problems))
    candidate = EnhancementModel(
        name=name.strip(), version=version.strip(), runtime=Runtime.ONNX, built_in=False, file="pending",
        sha256="0" * 64, size=0, intended_use=card.intended_use, training_data=card.training_data,
        licence=card.licence, registered_by=user, **contract.as_dict(),
    )
    if EnhancementModel.objects.filter(name=candidate.name, version=candidate.version).exists():
        raise RegistrationRefused(
            "duplicate_version", f"{candidate} is already registered: a new file is a new version"
        )
    try:
        candidate.full_clean(exclude=["file", "sha256", "size", "check_report", "registered_by"])
    except ValidationError as exc:
        raise RegistrationRefused("invalid", " ".join(exc.messages)) from exc
    with tempfile.TemporaryDirectory(prefix="readerstudy-model-") as folder:
        path, digest, size = _spool(upload, Path(folder))
        same = EnhancementModel.objects.filter(sha256=digest).first()
        if same is not None:
            raise RegistrationRefused("duplicate", f"this file is already registered as {same}")
        report = try_model(path, contract)
        if not report.get("ok"):
            raise RegistrationRefused(report.get("code") or "failed", report.get("reason") or "refused")
        with open(path, "rb") as source:
            stored = default_storage.save(f"enhancement-models/{digest}.onnx", File(source))
    candidate.file, candidate.sha256, candidate.size, candidate.check_report = stored, digest, size, report
    try:
        with transaction.atomic():
            candidate.save()
    except (IntegrityError, ValidationError) as exc:
        default_storage.delete(stored)
        raise RegistrationRefused(
            "duplicate_version", f"{candidate} is already registered: a new file is a new version"
        ) from exc
    logger.info("Enhancement model %s registered by %s (sha256 %s, phantom run %.2f s)",
                candidate, user.username, digest, report.get("seconds", 0.0))
    return candidate


def register_model_bytes(user: User, data: bytes, **kwargs) -> EnhancementModel:
    """``register_model`` for bytes in hand (management commands, tests)."""
    return register_model(user, ContentFile(data, name="model.onnx"), **kwargs)


def retire_model(model: EnhancementModel, user: User, reason: str = "") -> EnhancementModel:
    """No new job uses the model from now on; what it made keeps its provenance. Admins only; never the built-in
    model (``ValueError``)."""
    if not is_admin(user):
        raise PermissionDenied("Only admins retire enhancement models.")
    if model.built_in:
        raise ValueError("The built-in model cannot be retired; set READERSTUDY_ENHANCE_MODEL to run another model.")
    if model.retired:
        return model
    model.retired, model.retired_at, model.retired_by = True, timezone.now(), user
    model.retired_reason = reason.strip()[:300]
    model.save(update_fields=["retired", "retired_at", "retired_by", "retired_reason"])
    logger.info("Enhancement model %s retired by %s", model, user.username)
    return model
