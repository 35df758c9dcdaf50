"""End-to-end enhancement throughput: DICOM series in, enhanced DICOM series out.

Cases as in the issue: a 2D series of 30 x 512 x 512 (axial T2W) and a 3D volume of 176 x 256 x 256
(post-contrast T1W), written from the phantom as uint16 single-frame MR instances. Timed: reading and decoding
(``read_series``), the network (``enhance_volume``), encoding and writing (``write_series``). The model is
loaded and warmed up (``inference.warm_up``) before timing, as an enhancement worker does when it starts.
Achieved FLOP/s counts the network's convolutions with ``torch.utils.flop_counter`` and divides by the time
of ``enhance_volume``.

``python -m benchmarks.enhance_throughput [--device cpu|cuda] [--threads N] [--case 2d|3d] [--peak-gflops G]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import torch
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from torch.utils.flop_counter import FlopCounterMode

from worker.enhance.degrade import degrade
from worker.enhance.inference import DEFAULT_FACTOR, enhance_volume, load_model, warm_up
from worker.enhance.phantom import AcquisitionParams, default_params, make_tissue_model, render_contrast

logger = logging.getLogger("benchmarks.enhance_throughput")

CASES = {
    "2d": ("T2W", (30, 512, 512), (5.0, 0.45, 0.45)),
    "3d": ("T1W_POST", (176, 256, 256), (1.0, 0.9, 0.9)),
}


def phantom_volume(contrast: str, shape, spacing):
    """The benchmark's noisy phantom series ``(Z, Y, X)`` as stored (12-bit integers, as float32), its acquisition
    parameters and tissue model."""
    model = make_tissue_model(shape, seed=2_100_000, spacing=spacing)
    params = default_params(contrast)._replace(pixel_spacing=spacing[1], slice_thickness=spacing[0])  # type: ignore[arg-type]
    clean = render_contrast(model, contrast, params)  # type: ignore[arg-type]
    volume = degrade(clean, None, 0.02 * float(np.percentile(clean, 99)), seed=1)
    return np.clip(np.rint(volume), 0, 4095).astype(np.float32), params, model


def write_phantom_series(folder: Path, contrast: str, shape, spacing) -> AcquisitionParams:
    """A noisy phantom series as uint16 MR instances (12 bits stored) in ``folder``."""
    volume, params, model = phantom_volume(contrast, shape, spacing)
    stored = volume.astype("<u2")
    series_uid, study_uid = generate_uid(), generate_uid()
    for k in range(shape[0]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = study_uid, series_uid, "MR"
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [
            model.origin_lps[0],
            model.origin_lps[1],
            model.origin_lps[2] + k * spacing[0],
        ]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [spacing[1], spacing[2]], spacing[0]
        ds.MagneticFieldStrength, ds.RepetitionTime, ds.EchoTime = params.field_strength, params.tr, params.te
        ds.InversionTime, ds.FlipAngle = params.ti, params.flip_angle
        ds.MRAcquisitionType = "3D" if params.is_3d else "2D"
        ds.Rows, ds.Columns = shape[1], shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = stored[k].tobytes()
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)
    return params


def conv_flops_per_slice(device: str | None, matrix: tuple[int, int], weights: str | None = None) -> float:
    """FLOPs (2 per multiply-add) of one forward pass on one slice of ``matrix``."""
    loaded = load_model(weights, device)
    image = torch.zeros(1, loaded.model.in_chans, *matrix, device=loaded.device)
    context = torch.zeros(1, loaded.model.context_dim, device=loaded.device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        loaded.model(image, context, torch.ones(1, device=loaded.device))
    return float(counter.get_total_flops())


def run_case(name: str, device: str | None, factor: float, weights: str | None = None) -> dict:
    from worker.enhance.dicom_io import read_series, write_series

    contrast, shape, spacing = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in"
        source.mkdir()
        write_phantom_series(source, contrast, shape, spacing)
        started = time.perf_counter()
        series = read_series(source)
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        enhanced = enhance_volume(series.volume, series.datasets[0], factor, device, weights=weights)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        enhance_s = time.perf_counter() - started
        started = time.perf_counter()
        write_series(series, enhanced, Path(tmp) / "out")
        write_s = time.perf_counter() - started
        assert pydicom.dcmread(Path(tmp) / "out" / "0001.dcm").Rows == shape[1]
    total = read_s + enhance_s + write_s
    flops = conv_flops_per_slice(device, shape[1:], weights) * shape[0]
    return {
        "case": f"{name} {contrast} {shape[0]}x{shape[1]}x{shape[2]}",
        "read_s": read_s,
        "enhance_s": enhance_s,
        "write_s": write_s,
        "series_s": total,
        "slices_per_s": shape[0] / total,
        "network_gflop": flops / 1e9,
        "achieved_gflops": flops / enhance_s / 1e9,
    }


def cpu_peak_gflops(threads: int) -> float | None:
    """Nominal FP32 peak: threads x clock x FLOP/cycle (32 with AVX2/AVX-512 FMA on two 256-bit pipes)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    per_cycle = 32 if " fma" in flags else 8
    return threads * (mhz[0] / 1000.0) * per_cycle if mhz else None


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, nproc {os.cpu_count()}, {model}{gpu}, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--factor", type=float, default=DEFAULT_FACTOR)
    parser.add_argument(
        "--peak-gflops", type=float, default=None, help="device peak, for the fraction reached"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--weights", default=None, help="default: the shipped weights")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    loaded = load_model(args.weights, args.device)
    on_cuda = loaded.device.type == "cuda"
    matrices = sorted({CASES[name][1][1:] for name in args.case or CASES})
    warm_s = warm_up(args.weights, args.device, matrices)
    peak = args.peak_gflops or (None if on_cuda else cpu_peak_gflops(args.threads))
    rows = [run_case(name, args.device, args.factor, args.weights) for name in args.case or sorted(CASES)]
    print(f"machine: {machine()}; device {loaded.device}; threads {args.threads}; model {loaded.version}")
    print(f"warm-up when the worker starts (not in the figures below): {warm_s:.2f} s")
    print("| case | read s | network s | write s | s/series | slices/s | GFLOP | GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fraction = f"{100 * r['achieved_gflops'] / peak:.0f} % of {peak:.0f}" if peak else "n/a"
        print(
            f"| {r['case']} | {r['read_s']:.2f} | {r['enhance_s']:.2f} | {r['write_s']:.2f} | {r['series_s']:.2f} "
            f"| {r['slices_per_s']:.1f} | {r['network_gflop']:.0f} | {r['achieved_gflops']:.1f} | {fraction} |"
        )
    if args.json:
        report = {"machine": machine(), "model": loaded.version, "warm_up_s": warm_s, "rows": rows, "peak_gflops": peak}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
