import numpy as np
import pydicom
import pytest
import torch
from pydicom.uid import generate_uid

from worker.enhance import __main__ as cli
from worker.enhance.dicom_io import SeriesError, enhanced_uids, read_series, write_series
from worker.enhance.inference import enhance_volume, shipped_versions, weights_path
from worker.enhance.phantom import default_params, make_tissue_model, render_contrast

from .conftest import read_back
from .conftest import write_series as write_test_series

GEOMETRY = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "Rows",
    "Columns",
)
ENCODING = (
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
)


@pytest.mark.parametrize("shape", [(4, 32, 32), (3, 37, 50), (1, 24, 40)])
def test_shape_identical_and_deterministic(tiny_weights, shape):
    volume = np.random.default_rng(0).uniform(100, 1000, size=shape).astype(np.float32)
    torch_state = torch.random.get_rng_state()
    out = enhance_volume(volume, default_params("T2W"), 8.0, "cpu", weights=tiny_weights)
    assert out.shape == shape and out.dtype == np.float32
    assert not np.allclose(out, volume)
    np.testing.assert_array_equal(
        out, enhance_volume(volume, default_params("T2W"), 8.0, "cpu", weights=tiny_weights)
    )
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_two_dimensional_input_and_tiling(tiny_weights):
    volume = np.random.default_rng(1).uniform(100, 1000, size=(150, 140)).astype(np.float32)
    whole = enhance_volume(volume, default_params("T2W"), 8.0, "cpu", weights=tiny_weights)
    tiled = enhance_volume(volume, default_params("T2W"), 8.0, "cpu", weights=tiny_weights, tile=96)
    assert whole.shape == tiled.shape == volume.shape
    assert np.abs(tiled - whole).mean() < 0.25 * np.abs(whole - volume).mean()


def test_factor_one_is_identity_and_scale_is_restored(tiny_weights):
    volume = np.random.default_rng(2).uniform(100, 1000, size=(3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(
        enhance_volume(volume, default_params("T2W"), 1.0, "cpu", weights=tiny_weights), volume, rtol=1e-5
    )
    # The noise floor kept in the background is counted in steps of the stored values: scale those too.
    small = enhance_volume(volume, default_params("T2W"), 8.0, "cpu", weights=tiny_weights, quantum=1.0)
    large = enhance_volume(volume * 10, default_params("T2W"), 8.0, "cpu", weights=tiny_weights, quantum=10.0)
    np.testing.assert_allclose(large, small * 10, rtol=1e-4, atol=1e-2)
    with pytest.raises(ValueError):
        enhance_volume(volume, default_params("T2W"), 0.5, "cpu", weights=tiny_weights)


@pytest.mark.skipif(not weights_path().exists(), reason="shipped weights not present")
def test_shipped_model_preserves_tissue_means():
    from worker.enhance.degrade import degrade

    model = make_tissue_model((5, 128, 128), seed=2_000_123, spacing=(5.0, 1.8, 1.8))
    clean = render_contrast(model, "T2W")
    noisy = degrade(clean, None, 0.03 * np.percentile(clean, 99), seed=1)
    out = enhance_volume(noisy, default_params("T2W")._replace(pixel_spacing=1.8), 16.0, "cpu")
    for mask in (model.gm > 0.8, model.wm > 0.9):
        assert mask.sum() > 100
        assert out[mask].mean() == pytest.approx(clean[mask].mean(), rel=0.02)
    assert np.abs(out - clean)[model.head_mask].mean() < np.abs(noisy - clean)[model.head_mask].mean()


def test_read_series_sorts_and_rescales(series_dir, t2w_volume):
    series = read_series(series_dir)
    expected = np.rint((t2w_volume + 100.0) / 0.5) * 0.5 - 100.0
    np.testing.assert_allclose(series.volume, expected, atol=1e-3)
    z = [float(ds.ImagePositionPatient[2]) for ds in series.datasets]
    assert z == sorted(z)


def test_write_series_geometry_encoding_uids_and_no_hint(series_dir, tmp_path, t2w_volume):
    series = read_series(series_dir)
    enhanced = series.volume * 1.01
    enhanced[0, 0, 0] = 1e7  # must be clipped to the 12-bit range
    uids, paths = write_series(series, enhanced, tmp_path / "out")
    written = read_back(tmp_path / "out")
    assert len(written) == len(series.datasets) and [p.name for p in paths] == [
        f"{i:04d}.dcm" for i in range(1, 7)
    ]
    sources = {str(ds.SOPInstanceUID) for ds in series.datasets}
    for src, out in zip(series.datasets, written, strict=True):
        for keyword in (
            GEOMETRY
            + ENCODING
            + ("StudyInstanceUID", "FrameOfReferenceUID", "InstanceNumber", "SeriesDescription")
        ):
            assert out.get(keyword) == src.get(keyword), keyword
        assert out.SeriesInstanceUID == uids.series_instance_uid != src.SeriesInstanceUID
        assert (
            out.SOPInstanceUID not in sources
            and out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
        )
        assert set(out.dir()) <= set(src.dir())
        text = str(out).lower()
        assert "enhanc" not in text and "deep" not in text and "ceunet" not in text
    assert written[0].pixel_array.max() == 4095
    reread = read_series(tmp_path / "out")
    np.testing.assert_allclose(reread.volume[1:], enhanced[1:], atol=0.26)


def test_uid_factory_is_used_and_checked(series_dir):
    series = read_series(series_dir)

    def factory(key: str) -> str:
        return generate_uid(prefix="1.2.826.0.1.3680043.10.543.", entropy_srcs=["secret", key])

    first, second = enhanced_uids(series, factory), enhanced_uids(series, factory)
    assert first == second and len(set(first.sop_instance_uids)) == len(series.datasets)
    with pytest.raises(ValueError):
        enhanced_uids(series, lambda key: "1.2.3")
    with pytest.raises(ValueError):
        enhanced_uids(series, lambda key: "not a uid")


def test_read_series_errors(tmp_path, t2w_volume):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SeriesError, match="no files"):
        read_series(empty)
    mixed = tmp_path / "mixed"
    write_test_series(mixed, t2w_volume[:2])
    (mixed / "zz.dcm").write_bytes(pydicom.dcmread(next(mixed.iterdir())).PixelData)
    with pytest.raises(SeriesError, match="not a DICOM file"):
        read_series(mixed)
    (mixed / "zz.dcm").unlink()
    other = tmp_path / "other"
    write_test_series(other, t2w_volume[:2])
    for path in other.iterdir():
        path.rename(mixed / f"b{path.name}")
    with pytest.raises(SeriesError, match="mixes 2 series"):
        read_series(mixed)


def test_command_line(series_dir, tmp_path, tiny_weights, capsys):
    out = tmp_path / "enhanced"
    assert (
        cli.main(
            [str(series_dir), str(out), "--device", "cpu", "--weights", str(tiny_weights), "--factor", "4"]
        )
        == 0
    )
    assert len(list(out.iterdir())) == 6
    assert "enhanced 6 instances" in capsys.readouterr().out
    assert cli.main([str(series_dir), str(out), "--weights", str(tiny_weights)]) == 2
    assert "not empty" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main([str(empty), str(tmp_path / "o2"), "--weights", str(tiny_weights)]) == 2
    (empty / "notes.txt").write_text("not dicom")
    assert cli.main([str(empty), str(tmp_path / "o3"), "--weights", str(tiny_weights)]) == 2
    assert "not a DICOM file" in capsys.readouterr().err


def test_command_line_picks_a_shipped_model(series_dir, tmp_path, capsys):
    oldest = shipped_versions()[0]
    assert cli.main([str(series_dir), str(tmp_path / "o"), "--device", "cpu", "--model", oldest]) == 0
    assert f"with {oldest} on cpu" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main([str(series_dir), str(tmp_path / "o2"), "--model", "../weights/evil"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.skipif(not weights_path().exists(), reason="shipped weights not present")
def test_enhanced_image_has_no_pile_up_at_zero_and_keeps_a_background_floor():
    """DL output rounded to stored integers has about as many exact zeros as its input, and noise in the air."""
    from worker.enhance.degrade import degrade

    model = make_tissue_model((4, 128, 128), seed=2_000_321, spacing=(5.0, 1.8, 1.8))
    clean = render_contrast(model, "T2W")
    noisy = np.rint(degrade(clean, None, 0.005 * np.percentile(clean, 99), seed=3))
    out = np.rint(enhance_volume(noisy, default_params("T2W")._replace(pixel_spacing=1.8), 16.0, "cpu"))
    assert out.min() >= 0
    assert (out == 0).mean() <= (noisy == 0).mean() + 0.01
    air = ~model.head_mask
    assert out[air].std() > 1.0  # a noise floor, never a flat background (SD 0 makes the paper's SNR infinite)
    assert out[air].std() <= noisy[air].std() * 1.05
