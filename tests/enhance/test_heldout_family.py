"""The held-out phantom family judges generalisation, so it must be deterministic, sane and independent of training."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import heldout_phantoms as heldout
from worker.enhance import phantom

SPACING_2D = (5.0, 2.4, 2.4)
SPACING_3D = (1.0, 2.4, 2.4)
SEED = heldout.HELDOUT_SEED_OFFSET


def _slab(seed: int = SEED, spacing=SPACING_2D) -> heldout.HeldoutHead:
    """A small lesion-centred slab: coarse pixels keep the test fast."""
    centre_z = heldout.draw_anatomy(seed).lesion_centre[2]
    return heldout.make_heldout_head((3, 96, 96), spacing, seed, centre_z=centre_z)


@pytest.fixture(scope="module")
def slab() -> heldout.HeldoutHead:
    return _slab()


def _mean(image: np.ndarray, mask: np.ndarray) -> float:
    assert mask.any()
    return float(image[mask].mean())


def test_same_seed_same_head_and_other_seed_other_head(slab):
    again = _slab()
    for tissue, values in slab.fractions.items():
        np.testing.assert_array_equal(values, again.fractions[tissue])
    np.testing.assert_array_equal(slab.bias, again.bias)
    other = _slab(SEED + 1)
    assert other.anatomy.lesion_centre != slab.anatomy.lesion_centre
    assert not np.array_equal(other.fractions["gm"], slab.fractions["gm"])


def test_fractions_and_masks_are_consistent(slab):
    total = sum(slab.fractions.values())
    assert all(float(v.min()) >= -1e-6 for v in slab.fractions.values())
    assert float(total.max()) <= 1.0 + 1e-5
    masks = slab.masks
    for name in ("gm", "wm", "lesion", "enhancing", "oedema", "air", "head", "brain"):
        assert masks[name].any(), name
    assert not (masks["air"] & masks["head"]).any()
    assert not (masks["brain"] & ~masks["head"]).any()
    assert not (masks["lesion"] & ~masks["brain"]).any()
    assert not ((masks["enhancing"] | masks["necrosis"]) & ~masks["lesion"]).any()
    assert not (masks["lesion"] & masks["oedema"]).any()
    assert not (masks["gm"] & masks["wm"]).any()


def test_contrasts_are_ordered_like_clinical_images(slab):
    t2w = heldout.render_heldout(slab, "T2W", heldout.heldout_params("T2W", 3.0, SPACING_2D))
    flair = heldout.render_heldout(slab, "FLAIR", heldout.heldout_params("FLAIR", 3.0, SPACING_2D))
    m = slab.masks
    csf, cortex = slab.fractions["csf"] > 0.9, slab.fractions["gm"] > 0.8
    assert _mean(t2w, csf) > _mean(t2w, cortex) > _mean(t2w, m["wm"])
    assert _mean(flair, csf) < 0.3 * _mean(flair, m["wm"])
    assert _mean(flair, m["oedema"]) > _mean(flair, cortex) > _mean(flair, m["wm"])
    head_3d = _slab(spacing=SPACING_3D)
    params = heldout.heldout_params("T1W_POST", 3.0, SPACING_3D)
    t1w = heldout.render_heldout(head_3d, "T1W_POST", params)
    m3 = head_3d.masks
    assert _mean(t1w, m3["enhancing"]) > 1.3 * _mean(t1w, m3["wm"])
    assert _mean(t1w, m3["wm"]) > _mean(t1w, m3["gm"])
    assert heldout.signal("necrosis", "T1W_POST", params, 0.5) < heldout.signal("wm", "T1W_POST", params, 0.5)
    spin_echo = heldout.heldout_params("T2W", 1.5, SPACING_2D)
    assert heldout.signal("blood", "T2W", spin_echo, 0.5) < 0.2 * heldout.signal("wm", "T2W", spin_echo, 0.5)


def test_the_family_shares_no_code_path_with_the_training_anatomy(monkeypatch):
    for tissue in ("gm", "wm", "csf", "oedema", "necrosis", "enhancing"):
        assert heldout.RELAXATION[tissue] != phantom._RELAXATION[tissue]

    def forbidden(*args, **kwargs):
        raise AssertionError("the held-out family reached the training phantom")

    for name in ("make_tissue_model", "render_contrast", "tissue_signal", "scaled_signals", "_native_maps"):
        monkeypatch.setattr(phantom, name, forbidden)
    heldout.draw_anatomy.cache_clear()
    head = heldout.make_heldout_head((2, 48, 48), (5.0, 4.8, 4.8), SEED + 7)
    image = heldout.render_heldout(head, "FLAIR", heldout.heldout_params("FLAIR", 3.0, (5.0, 4.8, 4.8)))
    assert float(image.max()) > 0
