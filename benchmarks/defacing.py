"""Defacing of 3D head series (Clean Recognizable Visual Features, 113102): time per series, brain voxels touched and
face and ear voxels removed, on the brain phantom with a face and ears added, and a sagittal reformat to look at.

    .venv/bin/python benchmarks/defacing.py --shapes 48x96x96,96x192x192,176x256x256 --png var/shots/defacing.png

Per shape and site (the three synthetic vendors' patients, so three lesions and field strengths): the face series is
written as DICOM (``apps.privacy.face_phantom``), read back, and defaced by the service the upload uses
(``apps.privacy.services.faces.deface_datasets``: pixels read, rule, pixels written back); the rule alone
(``apps.privacy.defacing.deface``) is timed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readerstudy.settings")
os.environ.setdefault("READERSTUDY_DEBUG", "1")

import django  # noqa: E402

django.setup()

import pydicom  # noqa: E402
from PIL import Image  # noqa: E402

from apps.imaging import synthetic  # noqa: E402
from apps.imaging.services.storage import slice_location  # noqa: E402
from apps.privacy import defacing, face_phantom  # noqa: E402
from apps.privacy.services import faces  # noqa: E402
from benchmarks import machine  # noqa: E402


def sagittal_png(before: np.ndarray, after: np.ndarray, spacing: tuple[float, float, float], path: Path) -> None:
    """Mid-sagittal reformat, before and after, superior up and anterior (row 0 of an LPS axial slice) on the left."""
    middle = before.shape[2] // 2
    panels = []
    for volume in (before, after):
        plane = volume[::-1, :, middle].astype(np.float64)  # (Z, Y): superior first
        low, high = np.percentile(before, [1, 99.5])
        grey = np.clip((plane - low) / (high - low) * 255, 0, 255).astype(np.uint8)
        height = round(plane.shape[0] * spacing[0] / spacing[1])
        panels.append(Image.fromarray(grey).resize((plane.shape[1], height), Image.Resampling.BILINEAR))
    scale = max(1, 400 // panels[0].height)
    panels = [p.resize((p.width * scale, p.height * scale), Image.Resampling.BILINEAR) for p in panels]
    canvas = Image.new("L", (panels[0].width * 2 + 10, panels[0].height), 0)
    canvas.paste(panels[0], (0, 0))
    canvas.paste(panels[1], (panels[0].width + 10, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="48x96x96,96x192x192,176x256x256")
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the rule alone; the fastest is reported")
    parser.add_argument("--png", type=Path, default=Path("var/shots/defacing_sagittal.png"))
    args = parser.parse_args()
    print(machine.describe())
    print("| shape (Z x Y x X) | voxel mm | site | brain voxels cut | face removed | ears removed | rest of head "
          "removed | rule s (wall, CPU) | service s (read, cut, write back) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    shapes = [tuple(int(v) for v in text.split("x")) for text in args.shapes.split(",")]
    for shape in shapes:
        for site in range(args.sites):
            patient = synthetic.make_patient(site, index=1, seed=args.seed)
            with tempfile.TemporaryDirectory() as tmp:
                phantom = face_phantom.write_face_series(Path(tmp), patient, shape, seed=args.seed)
                datasets = sorted((pydicom.dcmread(p) for p in phantom.files), key=slice_location)
                before = np.stack([ds.pixel_array for ds in datasets])
            start = time.perf_counter()
            result = faces.deface_datasets(datasets)
            service_s = time.perf_counter() - start
            after = np.stack([ds.pixel_array for ds in datasets])
            coords = defacing.voxel_coordinates(
                np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets]),
                np.array([float(v) for v in datasets[0].ImageOrientationPatient]),
                [float(v) for v in datasets[0].PixelSpacing], before.shape)
            wall, cpu = [], []
            for _ in range(args.repeat):
                start_cpu = time.process_time()
                wall.append(defacing.deface(before.astype(np.float32), coords).seconds)
                cpu.append(time.process_time() - start_cpu)
            model = phantom.model
            rest = model.head_mask & ~model.brain_mask
            print(f"| {' x '.join(map(str, shape))} | {' x '.join(f'{s:.2f}' for s in model.spacing)} | {site} | "
                  f"{int((result.mask & model.brain_mask).sum())} of {int(model.brain_mask.sum())} | "
                  f"{(result.mask & phantom.face).sum() / phantom.face.sum():.1%} | "
                  f"{(result.mask & phantom.ears).sum() / phantom.ears.sum():.1%} | "
                  f"{(result.mask & rest).sum() / rest.sum():.2%} | {min(wall):.2f}, {min(cpu):.2f} | {service_s:.2f} |",
                  flush=True)
            if shape == shapes[-1] and site == 0:
                sagittal_png(before, after, model.spacing, args.png)
                assert not (result.mask & model.brain_mask).any()
    print(f"sagittal reformat: {args.png} (method: {defacing.METHOD})")


if __name__ == "__main__":
    main()
