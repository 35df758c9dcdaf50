import numpy as np
import pytest

from worker.enhance.phantom import (
    CONTRASTS,
    default_params,
    make_tissue_model,
    render_contrast,
)


@pytest.mark.parametrize("shape", [(6, 40, 48), (3, 32, 32), (12, 64, 64)])
def test_shapes_and_fractions(shape):
    model = make_tissue_model(shape, seed=1)
    fractions = model.fractions()
    total = sum(fractions.values())
    assert all(f.shape == shape and f.dtype == np.float32 for f in fractions.values())
    assert all(f.min() >= 0 for f in fractions.values())
    assert total.max() <= 1.0 + 1e-5
    for mask in (model.brain_mask, model.head_mask, model.lesion_mask, model.oedema_mask):
        assert mask.shape == shape and mask.dtype == bool
    assert model.brain_mask.any()
    assert not (model.brain_mask & ~model.head_mask).any()


@pytest.mark.parametrize("seed", [0, 5])
def test_deterministic_and_global_rng_untouched(seed):
    state = np.random.get_state()
    a = make_tissue_model((6, 40, 48), seed=seed)
    b = make_tissue_model((6, 40, 48), seed=seed)
    assert np.random.get_state()[1].tolist() == state[1].tolist()
    for x, y in zip(a.fractions().values(), b.fractions().values(), strict=True):
        np.testing.assert_array_equal(x, y)
    other = make_tissue_model((6, 40, 48), seed=seed + 100)
    assert not np.array_equal(a.enhancing, other.enhancing)


def test_without_lesion():
    model = make_tissue_model((6, 40, 48), seed=2, lesion=False)
    assert not model.lesion_mask.any() and not model.oedema_mask.any()
    assert model.enhancing.max() == 0 and model.necrosis.max() == 0


def test_contrasts_are_physiological():
    model = make_tissue_model((20, 96, 96), seed=11)
    assert model.lesion_mask.any() and model.oedema_mask.any()
    images = {c: render_contrast(model, c) for c in CONTRASTS}
    csf, wm = model.csf > 0.8, model.wm > 0.8
    for contrast, image in images.items():
        assert image.dtype == np.float32 and image.shape == model.shape
        assert 300 < image.max() < 5000, contrast
    assert images["T2W"][csf].mean() > 2 * images["T2W"][wm].mean()
    assert images["FLAIR"][csf].mean() < 0.5 * images["FLAIR"][wm].mean()
    assert images["FLAIR"][model.oedema_mask].mean() > 1.2 * images["FLAIR"][wm].mean()
    assert images["T1W_POST"][model.enhancing_mask].mean() > 1.2 * images["T1W_POST"][wm].mean()
    assert images["T1W_POST"][wm].mean() > images["T1W_POST"][model.gm > 0.8].mean()


def test_bad_contrast_raises():
    model = make_tissue_model((3, 32, 32), seed=1)
    with pytest.raises(ValueError):
        render_contrast(model, "DWI")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        default_params("DWI")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        make_tissue_model((32, 32), seed=1)  # type: ignore[arg-type]
