"""Phantom MR slices with PHI-like text burned into the pixels, and clean ones: the corpus the burned-in text
benchmark measures and the tests upload. Deterministic for a seed; no Django, no downloads (fonts come with
matplotlib's wheel and Pillow, anatomy with worker/enhance/phantom.py)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from worker.enhance import phantom

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONTS = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "mono": "DejaVuSansMono.ttf",
    "serif-italic": "DejaVuSerif-Italic.ttf",
    "bitmap": "",  # Pillow's built-in bitmap font, like a scanner's small annotation font
}
CONTRASTS = {"bright": 1.0, "grey 60%": 0.6, "dim 35%": 0.35, "dark on tissue": 0.0}
POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "top edge", "over anatomy")
TEXTS = (
    "DOE^JANE", "SMITHFIELD, JOHANNA", "PID 40817263", "ID: 0038-5512", "DOB 14/03/1961", "2023-03-14 10:15",
    "Acc# A88120311", "St. Aldric Hospital", "MRN 5512873", "Dr. MOREAU", "F 62Y", "Ex: 20411 Se: 3",
)


class Sample(NamedTuple):
    pixels: np.ndarray  # (rows, columns) int16, modality values
    mask: np.ndarray | None  # the burned-in text's pixels; None for a clean slice
    text: str
    font: str
    size_bucket: str
    contrast: str
    position: str


@functools.lru_cache(maxsize=8)
def _volume(matrix: int, contrast: str, seed: int) -> np.ndarray:
    model = phantom.make_tissue_model((9, matrix, matrix), seed)
    clean = phantom.render_contrast(model, contrast)
    rng = np.random.default_rng(seed)
    sigma = 0.025 * float(np.percentile(clean, 99))
    noisy = np.hypot(clean + rng.normal(0, sigma, clean.shape), rng.normal(0, sigma, clean.shape))
    return np.clip(np.rint(noisy), 0, 4095).astype(np.int16)


def phantom_slice(matrix: int, contrast: str, seed: int, index: int) -> np.ndarray:
    volume = _volume(matrix, contrast, seed)
    return volume[index % volume.shape[0]].copy()


def _font(name: str, cap_height: int) -> ImageFont.ImageFont:
    if not FONTS[name]:
        return ImageFont.load_default()
    return ImageFont.truetype(str(FONT_DIR / FONTS[name]), size=max(4, round(cap_height / 0.73)))


def text_mask(shape: tuple[int, int], text: str, font: str, cap_height: int, position: str,
              rng: np.random.Generator) -> np.ndarray:
    """Where the text's pixels are, drawn at ``position`` with a small random offset."""
    rows, columns = shape
    pad = int(rng.integers(2, 8))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    while True:  # a smaller font until the whole text fits across the image, as an annotation would
        drawing_font = _font(font, cap_height)
        left, top, right, bottom = probe.textbbox((0, 0), text, font=drawing_font)
        width, height = right - left, bottom - top
        if width <= columns - 2 * pad or cap_height <= 6 or not FONTS[font]:
            break
        cap_height -= 1
    x = {"top-left": pad, "bottom-left": pad, "top-right": columns - width - pad,
         "bottom-right": columns - width - pad}.get(position, (columns - width) // 2 + int(rng.integers(-10, 10)))
    y = {"top-left": pad, "top-right": pad, "top edge": pad, "bottom-left": rows - height - pad,
         "bottom-right": rows - height - pad}.get(position, rows // 2 + int(rng.integers(-rows // 8, rows // 8)))
    x, y = max(0, min(x, columns - width)), max(0, min(y, rows - height))
    image = Image.new("L", (columns, rows), 0)
    ImageDraw.Draw(image).text((x - left, y - top), text, fill=255, font=drawing_font)
    return np.asarray(image) > 127


def burn(pixels: np.ndarray, mask: np.ndarray, contrast: str) -> np.ndarray:
    """Text written into the pixels as a scanner or a workstation does: a fixed value over the image."""
    top = float(np.percentile(pixels, 99.5))
    level = CONTRASTS[contrast]
    value = int(top * level) if level else int(np.percentile(pixels, 5))
    out = pixels.copy()
    out[mask] = value
    return out


def make_corpus(text_slices: int, seed: int = 3, matrices: tuple[int, ...] = (256, 256, 256, 512)) -> list[Sample]:
    """``text_slices`` slices with text and as many clean ones, cycling through fonts, sizes, contrasts, positions."""
    rng = np.random.default_rng(seed)
    samples = []
    fonts, contrasts = list(FONTS), list(CONTRASTS)
    for i in range(text_slices):
        matrix = matrices[i % len(matrices)]
        contrast_name = phantom.CONTRASTS[i % 3]
        base = phantom_slice(matrix, contrast_name, seed + i % 2, 2 + i % 6)
        font = fonts[i % len(fonts)]
        position = POSITIONS[(i // len(fonts)) % len(POSITIONS)]
        contrast = contrasts[(i // 2) % len(contrasts)]
        if contrast == "dark on tissue":
            position = "over anatomy"
        cap = int(rng.integers(6, 25)) * matrix // 256
        if font == "bitmap":
            cap = 8  # the bitmap font has one size
        text = TEXTS[int(rng.integers(len(TEXTS)))]
        mask = text_mask(base.shape, text, font, cap, position, rng)
        bucket = "6-9 px" if cap < 10 else "10-15 px" if cap < 16 else "16-24 px" if cap <= 24 else "25+ px (512)"
        samples.append(Sample(burn(base, mask, contrast), mask, text, font, bucket, contrast, position))
        clean = phantom_slice(matrix, contrast_name, seed + 1 - i % 2, 8 - i % 9)
        samples.append(Sample(clean, None, "", "", "", "", ""))
    return samples


def demo_slices(patients_per_site: int = 4, shape_2d: tuple[int, int, int] = (16, 128, 128),
                shape_3d: tuple[int, int, int] = (24, 128, 128), seed: int = 2026) -> list[np.ndarray]:
    """Every slice of the demo's synthetic studies (apps/imaging/services/demo.py's defaults), in modality values:
    clean images a detector must pass, or it holds a clean demo series."""
    import tempfile

    import pydicom

    from apps.imaging import blinding, synthetic

    slices = []
    with tempfile.TemporaryDirectory(prefix="readerstudy-text-corpus-") as tmp:
        for site_index, site in enumerate(synthetic.SITE_PROFILES[:3]):
            for index in range(patients_per_site):
                patient = synthetic.make_patient(site_index, index, seed)
                files = synthetic.write_study(Path(tmp) / f"{site_index}-{index}", patient, site,
                                              shape_2d=shape_2d, shape_3d=shape_3d, seed=seed)
                slices += [blinding.modality_pixels(pydicom.dcmread(path)) for path in files]
    return slices
