"""The models that ship with the engine (``weights/*.pt``), found without importing torch.

Web processes list them for the model registry; ``inference`` loads them.
"""

from __future__ import annotations

from pathlib import Path

MODEL_VERSION = "ceunet-c16-v2"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def shipped_versions() -> list[str]:
    """Model versions whose weights ship in ``weights/``, sorted by name; ``MODEL_VERSION`` is the default."""
    return sorted(path.stem for path in WEIGHTS_DIR.glob("*.pt"))


def weights_path(version: str = MODEL_VERSION) -> Path:
    """Path of the shipped weights of ``version``; ``ValueError`` for a version that does not ship."""
    versions = shipped_versions()
    if version not in versions:
        raise ValueError(f"unknown model version {version!r}; shipped: {', '.join(versions)}")
    return WEIGHTS_DIR / f"{version}.pt"
