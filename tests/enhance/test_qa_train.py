import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from worker.enhance import train
from worker.enhance.inference import load_model
from worker.enhance.qa import difference_png, residual_stats


def test_noise_residual_is_not_flagged(t2w_volume):
    noise = np.random.default_rng(0).normal(scale=20.0, size=t2w_volume.shape)
    stats = residual_stats(t2w_volume + noise, t2w_volume)
    assert stats.structure_score < 0.1 and not stats.flagged
    assert abs(stats.mean) < 2.0 and stats.sd == pytest.approx(20.0, rel=0.1)


def test_removed_structure_is_flagged(t2w_volume, tissue_model):
    removed = ndimage.gaussian_filter(t2w_volume, (0, 3, 3))
    stats = residual_stats(t2w_volume, removed)
    assert stats.structure_score > 0.3 and stats.flagged
    biased = residual_stats(t2w_volume, t2w_volume * 0.95)
    assert biased.flagged and biased.relative_mean == pytest.approx(0.05, rel=0.01)


def test_difference_png(t2w_volume):
    png = difference_png(t2w_volume, t2w_volume * 0.98)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (t2w_volume.shape[2], t2w_volume.shape[1])
    with pytest.raises(ValueError):
        difference_png(t2w_volume, t2w_volume[:2])


def test_make_pair_is_reproducible_and_leaves_global_rng():
    cfg = train.CONFIGS["small"]
    state = np.random.get_state()
    bank = train.build_bank([1], cfg, np.random.default_rng(0))
    pair = train.make_pair(bank[0], np.random.default_rng(1), 32)
    again = train.make_pair(
        train.build_bank([1], cfg, np.random.default_rng(0))[0], np.random.default_rng(1), 32
    )
    assert pair.image.shape == (3, 32, 32) and pair.target.shape == (1, 32, 32)
    np.testing.assert_array_equal(pair.image, again.image)
    np.testing.assert_array_equal(pair.context, again.context)
    assert np.random.get_state()[1].tolist() == state[1].tolist()


def test_tiny_training_lowers_loss_and_roundtrips(tmp_path):
    cfg = train.CONFIGS["small"]._replace(steps=40)
    result = train.train(cfg, seed=0)
    assert result.final["val_l1"] < result.initial["val_l1"]
    assert np.mean(result.losses[-10:]) < np.mean(result.losses[:10])
    path = tmp_path / "w.pt"
    digest = train.save_weights(result.model, path, "tiny", {})
    loaded = load_model(str(path), "cpu")
    assert loaded.version == "tiny" and loaded.sha256 == digest
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], tensor.half().float())
