import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydicom.dataset import Dataset
from torch.nn import functional as F

from worker.enhance.context import CONTEXT_DIM, context_from_dataset, context_from_params, params_from_dataset
from worker.enhance.model import ContextUNet, FiLM
from worker.enhance.phantom import CONTRASTS, default_params


@pytest.mark.parametrize("contrast", CONTRASTS)
def test_context_from_params_is_normalised(contrast):
    vector = context_from_params(default_params(contrast), (512, 512), 16.0)
    assert vector.shape == (CONTEXT_DIM,) and vector.dtype == np.float32
    assert np.all(vector >= 0) and np.all(vector <= 2)


@pytest.mark.parametrize("factor", [0.5, 101.0, float("nan")])
def test_bad_factor_raises(factor):
    with pytest.raises(ValueError):
        context_from_params(default_params("T2W"), (64, 64), factor)


def test_context_from_dataset_matches_params():
    ds = Dataset()
    ds.MagneticFieldStrength, ds.RepetitionTime, ds.EchoTime, ds.InversionTime = 3, 9000, 120, 2445
    ds.FlipAngle, ds.PixelSpacing, ds.SliceThickness = 90, [0.45, 0.45], 5
    ds.MRAcquisitionType, ds.Rows, ds.Columns = "2D", 512, 512
    params, matrix = params_from_dataset(ds)
    assert matrix == (512, 512) and not params.is_3d
    np.testing.assert_allclose(
        context_from_dataset(ds, 4.0),
        context_from_params(default_params("FLAIR"), (512, 512), 4.0),
        rtol=1e-6,
    )
    assert params_from_dataset(Dataset())[0].field_strength == 3.0


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 37, 50), (3, 3, 16, 24)])
def test_unet_shapes_and_identity_at_start(shape):
    torch.manual_seed(0)
    model = ContextUNet(in_chans=3, chans=4, num_pool_layers=3, context_dim=CONTEXT_DIM)
    image = torch.rand(shape)
    context = torch.rand(shape[0], CONTEXT_DIM)
    out = model(image, context, torch.full((shape[0],), 0.9))
    assert out.shape == (shape[0], 1, *shape[2:])
    torch.testing.assert_close(out, image[:, 1:2])


def test_strength_zero_is_identity_and_context_modulates():
    torch.manual_seed(0)
    model = ContextUNet(in_chans=1, chans=4, num_pool_layers=2, context_dim=CONTEXT_DIM)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    image = torch.rand(2, 1, 32, 32)
    context = torch.rand(2, CONTEXT_DIM)
    torch.testing.assert_close(model(image, context, torch.zeros(2)), image)
    a = model(image, context, torch.ones(2) * 0.5)
    b = model(image, context + 1.0, torch.ones(2) * 0.5)
    assert not torch.allclose(a, b)


def test_fused_film_equals_instance_norm_then_modulation():
    torch.manual_seed(0)
    film = FiLM(embed_dim=8, channels=6)
    torch.nn.init.normal_(film.linear.weight, std=0.5)
    torch.nn.init.normal_(film.linear.bias, std=0.5)
    x = torch.randn(3, 6, 20, 24) * 40.0 + 7.0
    embedding = torch.randn(3, 8)
    gamma, beta = film.linear(embedding)[..., None, None].chunk(2, dim=1)
    expected = F.instance_norm(x, eps=1e-5) * (1.0 + gamma) + beta
    torch.testing.assert_close(film(x, embedding), expected, rtol=1e-5, atol=1e-5)
    x.requires_grad_(True)
    film(x, embedding).square().sum().backward()
    assert torch.isfinite(x.grad).all()
    flat = torch.full((1, 6, 8, 8), 3.0)
    assert torch.isfinite(film(flat, embedding[:1])).all(), "a constant map (zero variance) stays finite"


def test_even_slices_rejected():
    with pytest.raises(ValueError):
        ContextUNet(in_chans=2, chans=4)


def test_engine_imports_no_django():
    code = (
        "import sys, worker.enhance.inference, worker.enhance.dicom_io, worker.enhance.qa, worker.enhance.train, "
        "worker.enhance.__main__; assert not any(m == 'django' or m.startswith(('django.', 'apps')) for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).parents[2]))
