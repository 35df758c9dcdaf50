"""Fixtures of the enhancement engine tests: a tiny DICOM series written from the phantom, tiny weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from worker.enhance.context import CONTEXT_DIM
from worker.enhance.model import ContextUNet
from worker.enhance.phantom import default_params, make_tissue_model, render_contrast
from worker.enhance.train import save_weights

SHAPE = (6, 40, 48)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The test machine is shared: keep torch on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tissue_model():
    return make_tissue_model(SHAPE, seed=7)


def write_series(
    folder: Path,
    volume: np.ndarray,
    spacing=(5.0, 1.0, 1.0),
    slope: float = 1.0,
    intercept: float = 0.0,
    signed: bool = False,
    series_uid: str | None = None,
    start: int = 0,
) -> list[Path]:
    """Write ``volume`` (real-world values) as single-frame MR instances in reverse slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    params = default_params("T2W")
    stored = np.rint((volume - intercept) / slope)
    paths = []
    for k in reversed(range(volume.shape[0])):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        sop_uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber = "MR", "AX T2", 3
        ds.InstanceNumber = start + k + 1
        ds.ImagePositionPatient = [-20.0, -20.0, float(k * spacing[0])]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        ds.MagneticFieldStrength, ds.RepetitionTime, ds.EchoTime = 3.0, params.tr, params.te
        ds.FlipAngle, ds.MRAcquisitionType = 90, "2D"
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.PixelData = stored[k].astype("<i2" if signed else "<u2").tobytes()
        path = folder / f"{volume.shape[0] - k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def t2w_volume(tissue_model) -> np.ndarray:
    return render_contrast(tissue_model, "T2W")


@pytest.fixture()
def series_dir(tmp_path, t2w_volume) -> Path:
    folder = tmp_path / "series"
    write_series(folder, t2w_volume, slope=0.5, intercept=-100.0)
    return folder


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """An untrained narrow network with a non-zero head, so enhancement changes pixels."""
    torch.manual_seed(3)
    model = ContextUNet(in_chans=3, chans=4, num_pool_layers=2, context_dim=CONTEXT_DIM)
    torch.nn.init.normal_(model.head.weight, std=0.05)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_weights(model, path, "tiny-test", {})
    return path


def read_back(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
