"""Ingestion throughput: de-identify + store against pydicom's bare read + write of the same files.

Generates a few thousand synthetic MR instances (with planted PHI, private tags and nested sequences), then in
one run measures, per instance:
  baseline   pydicom.dcmread + save_as to memory (what any DICOM tool must at least do)
  deid       dcmread + de-identify (PS3.15 Basic Profile) + save_as to memory
  deid+store dcmread + de-identify + write into the image store (local files)
  ingest     the whole service: validation (incl. pixel decoding), classification, de-identification, store
             and database rows, through `process_batch` on SQLite
and prints instances/s, latency percentiles, peak memory and the ratios to the baseline.

Usage: .venv/bin/python benchmarks/ingest.py [--patients 30] [--matrix 256]
"""

import argparse
import io
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {pick(0.5):.2f} ms  p95 {pick(0.95):.2f} ms  p99 {pick(0.99):.2f} ms"


def timed(files: list[Path], step) -> tuple[float, list[float]]:
    latencies = []
    start = time.perf_counter()
    for path in files:
        t0 = time.perf_counter()
        step(path)
        latencies.append(time.perf_counter() - t0)
    return time.perf_counter() - start, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=30, help="patients; each has 3 series")
    parser.add_argument("--matrix", type=int, default=256)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="readerstudy-bench-ingest-"))
    os.environ.update(READERSTUDY_VAR_DIR=str(work / "var"), READERSTUDY_ALLOW_INSECURE_KEY="1",
                      DJANGO_SETTINGS_MODULE="readerstudy.settings")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    import pydicom
    from django.conf import settings
    from django.core.management import call_command

    from apps.imaging import deidentify, synthetic
    from apps.imaging.services import ingest, storage, uploads
    from apps.institutions.services import add_site

    call_command("migrate", verbosity=0)
    incoming = work / "incoming"
    n = args.matrix
    for index in range(args.patients):
        patient = synthetic.make_patient(index % 3, index, seed=5)
        synthetic.write_study(incoming / f"p{index:03d}", patient, shape_2d=(12, n, n), shape_3d=(16, n, n),
                              seed=5)
    files = sorted(incoming.rglob("*.dcm"))
    total_bytes = sum(p.stat().st_size for p in files)
    print(f"{len(files)} instances, {n}x{n}, {total_bytes / 1e6:.1f} MB; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    def baseline(path: Path) -> None:
        pydicom.dcmread(path).save_as(io.BytesIO(), enforce_file_format=True)

    def deid(path: Path) -> None:
        ds = pydicom.dcmread(path)
        deidentify.deidentify_dataset(ds, case_code="C-BENCH", date_shift_days=-42, uid_secret="k")
        ds.save_as(io.BytesIO(), enforce_file_format=True)

    store_root = work / "store"

    def deid_store(path: Path) -> None:
        ds = pydicom.dcmread(path)
        deidentify.deidentify_dataset(ds, case_code="C-BENCH", date_shift_days=-42, uid_secret="k")
        target = store_root / f"{ds.SOPInstanceUID}.dcm"
        target.write_bytes(storage.encode_dataset(ds))

    store_root.mkdir()
    for path in files[:50]:  # warm the file cache and imports equally for every contender
        baseline(path)
        deid(path)
    rows = []
    for name, step in (("baseline read+write", baseline), ("read+de-identify+write", deid),
                       ("read+de-identify+store", deid_store)):
        seconds, latencies = timed(files, step)
        rows.append((name, len(files) / seconds, latencies))

    site = add_site("bench", "Benchmark Hospital")
    start = time.perf_counter()
    batch = uploads.stage_path(site, None, incoming)
    staged = time.perf_counter() - start
    start = time.perf_counter()
    batch = ingest.process_batch(batch.pk)
    processed = time.perf_counter() - start
    if batch.accepted_count != len(files):
        raise SystemExit(f"ingest accepted {batch.accepted_count} of {len(files)} files")
    rows.append(("full ingestion service (validate+classify+de-identify+store+DB)", len(files) / processed, None))

    base = rows[0][1]
    print(f"\n{'contender':66} {'inst/s':>8} {'ratio':>6}  latency")
    for name, rate, latencies in rows:
        spread = percentiles(latencies) if latencies else f"(batch of {len(files)}; staging copy {staged:.1f} s)"
        print(f"{name:66} {rate:8.1f} {rate / base:6.2f}  {spread}")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"median instance {statistics.median(p.stat().st_size for p in files) / 1024:.0f} KiB; "
          f"store {settings.MEDIA_ROOT}")


if __name__ == "__main__":
    main()
