"""Burned-in text detection (apps/privacy/text_detection.py) on a generated corpus: detection rate, false
positives, how much of the text the boxes cover (what blanking removes), and the time per slice.

Corpus: brain phantom slices (worker/enhance/phantom.py; T2W, FLAIR, post-contrast T1W; Rician noise; 256 and 512
matrices) with PHI-like text (names, IDs, dates, a hospital, an accession number) burned in by Pillow in varied
fonts (DejaVu Sans / Sans Bold / Sans Mono / Serif Italic from matplotlib's wheel, and Pillow's bitmap font),
sizes (6 to 24 pixels cap height), contrasts (text at 100 %, 60 % and 35 % of the slice's 99.5th percentile, and
dark text over tissue), positions (four corners, edges, over the anatomy); plus the same number of clean slices.

A text slice is detected when at least one box overlaps the burned-in text; coverage is the fraction of text
pixels inside the boxes. A clean slice with any box is a false positive. Each rule of text_detection.RULES asked for
reads every slice in turn (same machine, same load), so the first rule shipped ("page") is the baseline of the run.
``--demo`` also reads every slice of the demo's synthetic studies (clean: any box there holds a clean demo series).

Usage: .venv/bin/python benchmarks/burned_in_text.py [--slices 120] [--seed 3] [--rules page,lines] [--demo]
"""

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from apps.privacy import text_corpus, text_detection  # noqa: E402
from apps.privacy.text_corpus import make_corpus  # noqa: E402
from benchmarks import machine  # noqa: E402


def overlaps(box, mask) -> int:
    x, y, w, h = box[:4]
    return int(mask[y:y + h, x:x + w].sum())


def measure(corpus, rule: str) -> tuple[dict, int, int, dict]:
    """Per group (hit, coverage) of the text slices, false positives, clean slices, and seconds per slice by matrix."""
    by_group: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    times: dict[int, list[float]] = defaultdict(list)
    false_positive = clean = 0
    for sample in corpus:
        started = time.perf_counter()
        boxes = text_detection.detect(sample.pixels, rule=rule)
        times[sample.pixels.shape[0]].append(time.perf_counter() - started)
        if sample.mask is None:
            clean += 1
            false_positive += bool(boxes)
            continue
        text_pixels = int(sample.mask.sum())
        blanked = (text_detection.blank(sample.mask.astype("uint8"), boxes, 0) == 0) & sample.mask
        hit = any(overlaps(box, sample.mask) for box in boxes)
        coverage = float(blanked.sum()) / text_pixels
        for key in ("all text", f"font {sample.font}", f"size {sample.size_bucket}", f"contrast {sample.contrast}",
                    f"position {sample.position}", f"matrix {sample.pixels.shape[0]}"):
            by_group[key].append((hit, coverage))
    return by_group, false_positive, clean, times


def demo_false_positives(rule: str) -> tuple[int, int, float]:
    """(slices with a box, slices, median seconds a slice) over every slice of the demo's studies."""
    slices = text_corpus.demo_slices()
    seconds, flagged = [], 0
    for pixels in slices:
        started = time.perf_counter()
        flagged += bool(text_detection.detect(pixels, rule=rule))
        seconds.append(time.perf_counter() - started)
    return flagged, len(slices), statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=120, help="text slices (and as many clean ones)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--rules", default=",".join(reversed(text_detection.RULES)),
                        help="comma-separated rules of text_detection.RULES, each measured on the same corpus")
    parser.add_argument("--demo", action="store_true", help="also count boxes on every slice of the demo's studies")
    args = parser.parse_args()
    rules = args.rules.split(",")

    print(machine.describe())
    print(text_detection.engine_version(), f"min confidence {text_detection.MIN_CONFIDENCE},",
          f"min characters {text_detection.MIN_CHARACTERS}, rules {rules}")
    corpus = make_corpus(args.slices, seed=args.seed)
    results = {rule: measure(corpus, rule) for rule in rules}

    print()
    print("| group | slices | " + " | ".join(f"{r}: detected | {r}: coverage" for r in rules) + " |")
    print("| --- | ---: | " + " | ".join("---: | ---:" for _ in rules) + " |")
    groups = results[rules[0]][0]
    for key in sorted(groups, key=lambda k: (k != "all text", k)):
        cells = []
        for rule in rules:
            rows = results[rule][0][key]
            rate = sum(hit for hit, _ in rows) / len(rows)
            cells.append(f"{rate:.1%} | {statistics.fmean(c for _, c in rows):.1%}")
        print(f"| {key} | {len(groups[key])} | " + " | ".join(cells) + " |")
    print()
    for rule in rules:
        _, false_positive, clean, _ = results[rule]
        print(f"False positives, {rule}: {false_positive} of {clean} clean slices ({false_positive / clean:.1%}).")
    print("\n| rule | matrix | slices | median s/slice | p95 s/slice |")
    print("| --- | --- | ---: | ---: | ---: |")
    for rule in rules:
        times = results[rule][3]
        for size in sorted(times):
            samples = sorted(times[size])
            p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
            print(f"| {rule} | {size} x {size} | {len(samples)} | {statistics.median(samples):.3f} | {p95:.3f} |")
    if args.demo:
        for rule in rules:
            flagged, total, median = demo_false_positives(rule)
            print(f"Demo slices with a box, {rule}: {flagged} of {total} (median {median:.3f} s a slice).")


if __name__ == "__main__":
    main()
