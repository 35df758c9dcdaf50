"""Burned-in text detection (apps/privacy/text_detection.py) on a generated corpus: detection rate, false
positives, how much of the text the boxes cover (what blanking removes), and the time per slice.

Corpus: brain phantom slices (worker/enhance/phantom.py; T2W, FLAIR, post-contrast T1W; Rician noise; 256 and 512
matrices) with PHI-like text (names, IDs, dates, a hospital, an accession number) burned in by Pillow in varied
fonts (DejaVu Sans / Sans Bold / Sans Mono / Serif Italic from matplotlib's wheel, and Pillow's bitmap font),
sizes (6 to 24 pixels cap height), contrasts (text at 100 %, 60 % and 35 % of the slice's 99.5th percentile, and
dark text over tissue), positions (four corners, edges, over the anatomy); plus the same number of clean slices.

A text slice is detected when at least one box overlaps the burned-in text; coverage is the fraction of text
pixels inside the boxes. A clean slice with any box is a false positive.

Usage: .venv/bin/python benchmarks/burned_in_text.py [--slices 120] [--seed 3]
"""

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from apps.privacy import text_detection  # noqa: E402
from apps.privacy.text_corpus import make_corpus  # noqa: E402
from benchmarks import machine  # noqa: E402


def overlaps(box, mask) -> int:
    x, y, w, h = box[:4]
    return int(mask[y:y + h, x:x + w].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=120, help="text slices (and as many clean ones)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    print(machine.describe())
    print(text_detection.engine_version(), f"min confidence {text_detection.MIN_CONFIDENCE},",
          f"min characters {text_detection.MIN_CHARACTERS}, long side read at {text_detection.UPSCALE_TO} px")
    corpus = make_corpus(args.slices, seed=args.seed)
    by_group: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    times: dict[int, list[float]] = defaultdict(list)
    false_positive = clean = 0
    for sample in corpus:
        started = time.perf_counter()
        boxes = text_detection.detect(sample.pixels)
        times[sample.pixels.shape[0]].append(time.perf_counter() - started)
        if sample.mask is None:
            clean += 1
            false_positive += bool(boxes)
            by_group["clean"].append((bool(boxes), 0.0))
            continue
        text_pixels = int(sample.mask.sum())
        blanked = (text_detection.blank(sample.mask.astype("uint8"), boxes, 0) == 0) & sample.mask
        hit = any(overlaps(box, sample.mask) for box in boxes)
        coverage = float(blanked.sum()) / text_pixels
        for key in ("all text", f"font {sample.font}", f"size {sample.size_bucket}", f"contrast {sample.contrast}",
                    f"position {sample.position}", f"matrix {sample.pixels.shape[0]}"):
            by_group[key].append((hit, coverage))

    print()
    print("| group | slices | detected | mean coverage of text pixels |")
    print("| --- | ---: | ---: | ---: |")
    for key in sorted(by_group, key=lambda k: (k != "all text", k == "clean", k)):
        if key == "clean":
            continue
        rows = by_group[key]
        rate = sum(hit for hit, _ in rows) / len(rows)
        print(f"| {key} | {len(rows)} | {rate:.1%} | {statistics.fmean(c for _, c in rows):.1%} |")
    print(f"\nFalse positives: {false_positive} of {clean} clean slices ({false_positive / clean:.1%}).")
    print("\n| matrix | slices | median s/slice | p95 s/slice |")
    print("| --- | ---: | ---: | ---: |")
    for size in sorted(times):
        samples = sorted(times[size])
        p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
        print(f"| {size} x {size} | {len(samples)} | {statistics.median(samples):.3f} | {p95:.3f} |")


if __name__ == "__main__":
    main()
