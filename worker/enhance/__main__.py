"""``python -m worker.enhance INPUT_DIR OUTPUT_DIR [--device cpu|cuda] [--factor F] [--model VERSION]``.

Enhances one DICOM series folder into a new folder, without any database: for evaluation, and for sites that
want to check the model on their own data. Exit status 0 on success, 2 for unusable input, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .dicom_io import SeriesError, read_series, write_series
from .inference import (
    DEFAULT_FACTOR,
    MODEL_VERSION,
    enhance_volume,
    load_model,
    shipped_versions,
    weights_path,
)

logger = logging.getLogger("worker.enhance")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.enhance", description=__doc__.splitlines()[2])
    parser.add_argument("input_dir", type=Path, help="folder with the DICOM files of one series")
    parser.add_argument("output_dir", type=Path, help="new or empty folder for the enhanced series")
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default=None, help="default: CUDA when available"
    )
    parser.add_argument("--factor", type=float, default=DEFAULT_FACTOR, help="noise-reduction factor, 1..100")
    parser.add_argument(
        "--model", choices=shipped_versions(), default=MODEL_VERSION, help=f"shipped model (default {MODEL_VERSION})"
    )
    parser.add_argument("--weights", type=Path, default=None, help="weights file instead of a shipped model")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        started = time.perf_counter()
        series = read_series(args.input_dir)
        weights = args.weights or weights_path(args.model)
        loaded = load_model(str(weights), args.device)
        enhanced = enhance_volume(series.volume, series.datasets[0], args.factor, args.device, weights=weights)
        uids, paths = write_series(series, enhanced, args.output_dir)
    except (SeriesError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"enhanced {len(paths)} instances with {loaded.version} on {loaded.device} "
        f"in {time.perf_counter() - started:.1f} s -> {args.output_dir} (series {uids.series_instance_uid})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
