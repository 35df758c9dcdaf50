"""Burned-in text in the pixels, found by OCR (Tesseract, Debian's ``tesseract-ocr``, through ``pytesseract``).

Every image is checked, whatever its Burned In Annotation flag says. A slice is windowed to 8 bits (robust
percentiles), inverted (Tesseract reads dark text on light ground; text burned into MR is bright), enlarged so
that small annotation fonts reach the x-height Tesseract is trained on, and read in sparse-text mode. A word counts
as text when Tesseract is confident enough in it and it has at least ``MIN_CHARACTERS`` letters or digits; single
characters (orientation markers such as R / L) and shapes of the anatomy read as one stray glyph are not.

Only the boxes (pixel rectangles in the image's own rows and columns) and Tesseract's confidence leave this
module: the recognised words are thrown away at once, because they may be a patient's name.

Pure: numpy, Pillow and pytesseract; no Django, no I/O besides the Tesseract process.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from typing import NamedTuple

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

# Chosen on the generated corpus (benchmarks/burned_in_text.py, RESULTS.md) and the demo's phantom series: a word of
# three or more letters or digits counts when Tesseract is sure of it. Counting long words at any confidence and short
# ones from 60 held 3 of the demo's 18 clean series and 5.8 % of the corpus' clean slices (anatomy and noise read as
# 'prea' at confidence 0, 'titi,' at 34, 'lava' at 67, three letters at 62); from 70 on, none of either is held, for
# 47 % instead of 57 % of the text slices (2x beat 3x and 4x enlargement at half the time).
MIN_CHARACTERS = 3  # a word shorter than this is never text (orientation markers, one stray glyph)
MIN_CONFIDENCE = 70.0  # Tesseract's confidence (0-100) from which such a word is text
UPSCALE_TO = 512  # the long side Tesseract sees: a 256 matrix is read at 2x, 512 and larger as they are
MAX_UPSCALE = 2  # never more: enlarged noise of a small matrix reads as glyphs
MARGIN = 2  # pixels added around each box, plus a third of its height, so blanking takes the glyphs' edges
TESSERACT_CONFIG = "--psm 11 --oem 1"
WINDOW_PERCENTILES = (1.0, 99.5)
_ALNUM = re.compile(r"[A-Za-z0-9]")
# One Tesseract thread per call: workers run several series side by side, and OpenMP threads fight for cores.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


class Box(NamedTuple):
    """A rectangle of text in image pixels (row 0 at the top), with Tesseract's confidence (0-100)."""

    x: int
    y: int
    width: int
    height: int
    confidence: float


class Unavailable(RuntimeError):
    """The OCR engine cannot run here; the reason says what is missing."""


@functools.cache
def engine_version() -> str:
    """'tesseract 5.3.0 (pytesseract 0.3.13)'; raises ``Unavailable`` when either is missing."""
    try:
        import pytesseract
    except ImportError as exc:
        raise Unavailable("the Python package pytesseract is not installed") from exc
    try:
        version = pytesseract.get_tesseract_version()
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise Unavailable("the tesseract program is not installed (Debian package tesseract-ocr)") from exc
    return f"tesseract {version} (pytesseract {pytesseract.__version__})"


def availability() -> tuple[bool, str]:
    """(True, version) or (False, why not), without raising."""
    try:
        return True, engine_version()
    except Unavailable as exc:
        return False, str(exc)


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    """A slice windowed to 0-255 by robust percentiles of its own values (bright text stays at the top)."""
    values = np.asarray(pixels, dtype=np.float32)
    low, high = np.percentile(values, WINDOW_PERCENTILES)
    if high <= low:
        high = low + 1.0
    return (np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def _scale(shape: tuple[int, int]) -> int:
    return min(MAX_UPSCALE, max(1, UPSCALE_TO // max(shape)))


def detect(pixels: np.ndarray) -> list[Box]:
    """The text boxes in one 2-D slice (modality values); [] when none. Raises ``Unavailable``."""
    import pytesseract

    engine_version()
    image8 = to_8bit(pixels)
    scale = _scale(image8.shape)
    image = Image.fromarray(255 - image8)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.BICUBIC)
    data = pytesseract.image_to_data(image, lang="eng", config=TESSERACT_CONFIG,
                                     output_type=pytesseract.Output.DICT)
    boxes = []
    rows, columns = image8.shape
    for text, conf, left, top, width, height in zip(
        data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
    ):
        confidence, characters = float(conf), len(_ALNUM.findall(text or ""))
        if characters < MIN_CHARACTERS or confidence < MIN_CONFIDENCE:
            continue
        margin = MARGIN + height // (3 * scale)
        x0, y0 = max(0, left // scale - margin), max(0, top // scale - margin)
        x1 = min(columns, -(-(left + width) // scale) + margin)
        y1 = min(rows, -(-(top + height) // scale) + margin)
        boxes.append(Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0), round(confidence, 1)))
    del data  # the words themselves are never kept
    return boxes


class SeriesCheck(NamedTuple):
    """The text check of a series: boxes per image (same order as given), the engine, or why it could not run."""

    boxes: list[list[Box]]
    engine: str
    unavailable: str
    seconds: float

    @property
    def images_with_text(self) -> int:
        return sum(1 for b in self.boxes if b)


def check_slices(slices: list[np.ndarray]) -> SeriesCheck:
    """Every slice checked; when the engine is missing, nothing is checked and ``unavailable`` says why."""
    ok, engine = availability()
    if not ok:
        logger.error("Burned-in text check unavailable: %s", engine)
        return SeriesCheck([[] for _ in slices], "", engine, 0.0)
    started = time.perf_counter()
    boxes = [detect(pixels) for pixels in slices]
    return SeriesCheck(boxes, engine, "", time.perf_counter() - started)


def blank(pixels: np.ndarray, boxes: list[Box] | list[list[int]], value: int | float) -> np.ndarray:
    """A copy of ``pixels`` with every box set to ``value`` (the darkest stored value: background)."""
    out = np.array(pixels, copy=True)
    for box in boxes:
        x, y, width, height = (int(v) for v in list(box)[:4])
        out[y:y + height, x:x + width] = value
    return out
