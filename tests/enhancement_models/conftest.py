"""Registering models through the API as an admin, with tiny ONNX files made in the test run."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from tests.enhancement_models.onnx_models import BoxDenoiser, onnx_bytes
from tests.factories import AdminFactory

CARD = {
    "intended_use": "Testing the registry: denoises T2W brain series.",
    "training_data": "None: a fixed 3x3 mean filter.",
    "licence": "CC0-1.0",
}


@pytest.fixture(scope="session")
def box_onnx() -> bytes:
    return onnx_bytes(BoxDenoiser())


@pytest.fixture
def admin_user():
    return AdminFactory()


def register(client, data: bytes, name: str = "Box denoiser", version: str = "1.0", **fields):
    """POST /api/enhancement-models/ (multipart) with the file and a complete card; the response."""
    upload = io.BytesIO(data)
    upload.name = "model.onnx"
    body = {"file": upload, "name": name, "version": version, **CARD, **fields}
    return client.post(reverse("enhancement-model-list"), body, format="multipart")
