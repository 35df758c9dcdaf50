"""Burned-in text in the pixels, found by OCR (Tesseract, Debian's ``tesseract-ocr``, through ``pytesseract``).

Every image is checked, whatever its Burned In Annotation flag says. A slice is windowed to 8 bits (robust
percentiles). The rule applied (``RULE``, recorded with every finding through ``engine_version()``) is "lines":

1. Candidate lines. Burned-in text is thin, high-contrast strokes in a row, unlike anatomy: a morphological top-hat
   (bright text) and black-hat (dark text over tissue) keep what is narrower than a few pixels; its connected
   components of glyph size are joined sideways into line regions, and a region counts as a candidate when it is
   wider than high and made of at least three such components.
2. The whole slice read as the first rule ("page") reads it: inverted, enlarged to a long side of 512, sparse-text
   mode. Then one more Tesseract call on a mosaic of every candidate line: each crop scaled to the same line height,
   made dark-on-light, once as grey levels and once as its glyph mask. One call for all lines, because starting
   Tesseract costs more than reading a few small crops; the page is read apart, because in the mosaic's company
   Tesseract read the anatomy as a word more readily (a clean tuning slice flagged).
3. A word counts as text when Tesseract is confident enough in it and it has at least ``MIN_CHARACTERS`` letters or
   digits; single characters (orientation markers such as R / L) and shapes of the anatomy read as one stray glyph
   are not. The slice read whole needs confidence 70; a candidate line, where anatomy is read more readily, 80 with
   four characters or more and 90 with three. A word found in a candidate line yields that line's whole region as
   the box (what blanking removes).

The "page" rule (step 2's first read alone) is kept as the benchmark's baseline.

Only the boxes (pixel rectangles in the image's own rows and columns) and Tesseract's confidence leave this
module: the recognised words are thrown away at once, because they may be a patient's name.

Pure: numpy, scipy, Pillow and pytesseract; no Django, no I/O besides the Tesseract process.
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
from scipy import ndimage

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
RULES = ("lines", "page")  # "page": the slice alone, the first rule shipped (kept as the benchmark's baseline)
RULE = "lines"  # the rule detect() applies unless told; recorded in engine_version()
RULE_VERSION = {"lines": "lines-2", "page": "page-1"}
# Candidate lines ("lines" rule), chosen on a tuning corpus (seed 5) and the demo's phantom series (RESULTS.md).
TOP_HAT_THRESHOLD = 40  # 8-bit levels above the local background (top-hat) or below it (black-hat): a stroke
MIN_GLYPHS = 3  # connected components a candidate line is made of, at least
# A word read in a candidate line counts from confidence 80 with four or more letters or digits, from 90 with three:
# the demo's orbit rims read as four letters at 77-79, thin dark rims of 128 x 128 demo slices as 'Rar' at 82 and
# 'ral' at 85.
LINE_CONFIDENCE = 80.0
LINE_SHORT_CONFIDENCE = 90.0
# A candidate line is at most a seventh of the image high: the rim of an orbit on a 128 x 128 demo slice, 20 px
# high, read as a word; annotation text is smaller (up to 24 px caps on 256, 48 on 512 in the corpus).
MAX_LINE_FRACTION = 7
LINE_JOIN = 4  # pixels added to the top-hat size when joining glyphs sideways into a line
LINE_HEIGHT = 40  # pixels: every candidate crop is scaled to this height in the mosaic
MOSAIC_GAP = 24  # white pixels between the mosaic's tiles
MAX_CANDIDATES = 80  # per slice, most glyphs first: bounds the time on a slice full of fine structure
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
    """'tesseract 5.3.0 (pytesseract 0.3.13), rule lines-2'; raises ``Unavailable`` when either is missing."""
    try:
        import pytesseract
    except ImportError as exc:
        raise Unavailable("the Python package pytesseract is not installed") from exc
    try:
        version = pytesseract.get_tesseract_version()
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise Unavailable("the tesseract program is not installed (Debian package tesseract-ocr)") from exc
    return f"tesseract {version} (pytesseract {pytesseract.__version__}), rule {RULE_VERSION[RULE]}"


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


def _top_hat_size(shape: tuple[int, int]) -> int:
    """Wider than a stroke of the annotation fonts at this matrix, narrower than a glyph."""
    long_side = max(shape)
    return 5 if long_side < 200 else 7 if long_side <= 256 else 11


def candidate_lines(image8: np.ndarray, polarity: str) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
    """Line regions (x, y, width, height) that look like text of ``polarity`` ('bright' or 'dark'), and the glyph
    mask they were built from."""
    values = image8.astype(np.int16)
    size = _top_hat_size(image8.shape)
    if polarity == "bright":
        strokes = values - ndimage.grey_opening(values, size=(size, size))
    else:
        strokes = ndimage.grey_closing(values, size=(size, size)) - values
    components, count = ndimage.label(strokes > TOP_HAT_THRESHOLD)
    largest = max(image8.shape) // 5  # a glyph is smaller than a fifth of the image
    glyph_sized = np.zeros(count + 1, bool)
    for label, (rows, columns) in enumerate(ndimage.find_objects(components), start=1):
        height, width = rows.stop - rows.start, columns.stop - columns.start
        glyph_sized[label] = height >= 2 and height <= largest and width <= largest
    glyphs = glyph_sized[components]
    lines, _ = ndimage.label(ndimage.binary_dilation(glyphs, structure=np.ones((1, size + LINE_JOIN), bool)))
    regions = []
    for label, (rows, columns) in enumerate(ndimage.find_objects(lines), start=1):
        height, width = rows.stop - rows.start, columns.stop - columns.start
        if height < 5 or height > max(image8.shape) // MAX_LINE_FRACTION or width < 1.5 * height:
            continue
        inside = components[rows, columns][(lines[rows, columns] == label) & glyphs[rows, columns]]
        if len(np.unique(inside)) >= MIN_GLYPHS:
            regions.append((len(np.unique(inside)), (columns.start, rows.start, width, height)))
    return [region for _, region in sorted(regions, key=lambda r: -r[0])], glyphs


def _tile(source: np.ndarray, region: tuple[int, int, int, int], bright: bool) -> Image.Image:
    """The region's crop (with a margin) stretched to 0-255, dark text on light, scaled to ``LINE_HEIGHT``."""
    x, y, width, height = region
    pad = max(2, height // 3)
    y0, x0 = max(0, y - pad), max(0, x - pad)
    crop = source[y0:y + height + pad, x0:x + width + pad].astype(np.float32)
    low, high = float(crop.min()), float(crop.max())
    crop = (crop - low) / max(1.0, high - low) * 255.0
    if bright:
        crop = 255.0 - crop
    factor = LINE_HEIGHT / height
    image = Image.fromarray(crop.astype(np.uint8))
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BICUBIC)


def _page_image(image8: np.ndarray) -> tuple[Image.Image, int]:
    """The whole slice as the "page" rule reads it: inverted, enlarged to a long side of ``UPSCALE_TO``."""
    scale = _scale(image8.shape)
    image = Image.fromarray(255 - image8)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.BICUBIC)
    return image, scale


def _words(image: Image.Image, min_confidence: float = MIN_CONFIDENCE, short_confidence: float = MIN_CONFIDENCE):
    """(confidence, left, top, width, height) of each word Tesseract is sure enough of (``short_confidence`` for a
    word of ``MIN_CHARACTERS`` exactly); the text is not kept."""
    import pytesseract

    data = pytesseract.image_to_data(image, lang="eng", config=TESSERACT_CONFIG, output_type=pytesseract.Output.DICT)
    for text, conf, left, top, width, height in zip(
        data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
    ):
        characters = len(_ALNUM.findall(text or ""))
        needed = short_confidence if characters == MIN_CHARACTERS else min_confidence
        if characters >= MIN_CHARACTERS and float(conf) >= needed:
            yield float(conf), left, top, width, height


def _box(x0: int, y0: int, x1: int, y1: int, margin: int, shape: tuple[int, int], confidence: float) -> Box:
    """The rectangle from (x0, y0) to (x1, y1) widened by ``margin`` and kept inside the image."""
    rows, columns = shape
    left, top = max(0, int(x0) - margin), max(0, int(y0) - margin)
    right, bottom = min(columns, int(x1) + margin), min(rows, int(y1) + margin)
    return Box(left, top, right - left, bottom - top, round(confidence, 1))


def _page_box(word, scale: int, shape: tuple[int, int]) -> Box:
    confidence, left, top, width, height = word
    return _box(left // scale, top // scale, -(-(left + width) // scale), -(-(top + height) // scale),
                MARGIN + height // (3 * scale), shape, confidence)


def detect(pixels: np.ndarray, rule: str = RULE) -> list[Box]:
    """The text boxes in one 2-D slice (modality values); [] when none. Raises ``Unavailable``."""
    engine_version()
    image8 = to_8bit(pixels)
    page, scale = _page_image(image8)
    boxes = [_page_box(word, scale, image8.shape) for word in _words(page)]
    if rule == "page":
        return boxes
    if rule != "lines":
        raise ValueError(f"unknown rule {rule!r}; one of {RULES}")
    return boxes + _line_boxes(image8)


def _line_boxes(image8: np.ndarray) -> list[Box]:
    """The candidate lines in which Tesseract reads a word, read in one call on a mosaic of their crops."""
    tiles: list[tuple[Image.Image, tuple[int, int, int, int]]] = []
    for polarity in ("bright", "dark"):
        regions, glyphs = candidate_lines(image8, polarity)
        bright = polarity == "bright"
        glyph_image = ((glyphs == bright) * 255).astype(np.uint8)  # the glyphs alone, in the slice's polarity
        for region in regions[:MAX_CANDIDATES // 2]:
            tiles += [(_tile(source, region, bright), region) for source in (image8, glyph_image)]
    if not tiles:
        return []
    width = max(tile.width for tile, _ in tiles) + 2 * MOSAIC_GAP
    mosaic = Image.new("L", (width, sum(tile.height + MOSAIC_GAP for tile, _ in tiles) + MOSAIC_GAP), 255)
    bands, top = [], MOSAIC_GAP
    for tile, region in tiles:
        mosaic.paste(tile, (MOSAIC_GAP, top))
        bands.append((top - MOSAIC_GAP / 2, top + tile.height + MOSAIC_GAP / 2, region))
        top += tile.height + MOSAIC_GAP
    boxes: dict[tuple[int, int, int, int], Box] = {}
    for confidence, _, word_top, _, word_height in _words(mosaic, LINE_CONFIDENCE, LINE_SHORT_CONFIDENCE):
        centre = word_top + word_height / 2
        for x, y, w, h in (region for band_top, band_bottom, region in bands if band_top <= centre <= band_bottom):
            box = _box(x, y, x + w, y + h, MARGIN + h // 3, image8.shape, confidence)
            if box[:4] not in boxes or boxes[box[:4]].confidence < confidence:
                boxes[box[:4]] = box
            break
    return list(boxes.values())


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
