"""Fine-tuning recipe: label maps follow the crop, the contrast-preserving loss terms, ``--init`` weights."""

import numpy as np
import pytest
import torch

from worker.enhance import train
from worker.enhance.context import CONTEXT_DIM
from worker.enhance.model import ContextUNet

SMALL_FINETUNE = train.CONFIGS["small"]._replace(
    name="small-finetune",
    lr=2e-4,
    low_noise_fraction=0.5,
    lesion_crop=0.5,
    roi_weight=3.0,
    grad_weight=0.5,
    contrast_weight=2.0,
)


@pytest.fixture(scope="module")
def labelled_bank():
    return train.build_bank([1], SMALL_FINETUNE, np.random.default_rng(0))


def test_default_configs_carry_no_labels():
    assert not train.CONFIGS["cpu"].uses_labels and not train.CONFIGS["full"].uses_labels
    assert train.CONFIGS["cpu-finetune"].uses_labels
    bank = train.build_bank([1], train.CONFIGS["small"], np.random.default_rng(0))
    assert all(stack.labels is None for stack in bank)
    assert train.make_pair(bank[0], np.random.default_rng(1), 32).labels is None


def test_labels_follow_the_crop_and_are_reproducible(labelled_bank):
    stack = next(s for s in labelled_bank if (s.labels == 2).any())
    assert stack.labels.shape == stack.clean.shape[-2:] and set(np.unique(stack.labels)) <= {0, 1, 2}
    pairs = [train.make_pair(stack, np.random.default_rng(i), 32, 0.5, 1.0) for i in range(4)]
    again = train.make_pair(stack, np.random.default_rng(0), 32, 0.5, 1.0)
    np.testing.assert_array_equal(pairs[0].labels, again.labels)
    np.testing.assert_array_equal(pairs[0].image, again.image)
    for pair in pairs:
        assert pair.labels.shape == (1, 32, 32)
        assert (pair.labels > 0).any()  # lesion-centred crops always hold lesion or oedema


def test_contrast_term_penalises_a_lesion_oedema_offset():
    torch.manual_seed(0)
    model = ContextUNet(3, 8, 2, CONTEXT_DIM)
    image = torch.rand(2, 3, 32, 32)
    context = torch.zeros(2, CONTEXT_DIM)
    with torch.no_grad():
        centre = image[:, 1:2]
        exact = centre + model.correction(image, context)
    labels = torch.zeros(2, 1, 32, 32, dtype=torch.uint8)
    labels[:, :, 4:12, 4:12] = 2
    labels[:, :, 16:28, 16:28] = 1
    plain = train.CONFIGS["small"]
    with torch.no_grad():
        assert float(train.correction_loss(model, (image, exact, context), plain)) < 1e-6
    lesion = (labels == 2).float()
    offset = exact + 0.01 * lesion  # target brighter in the lesion: the output lost lesion contrast
    cfg = SMALL_FINETUNE._replace(roi_weight=0.0, grad_weight=0.0)
    with torch.no_grad():
        with_term = float(train.correction_loss(model, (image, offset, context), cfg, labels))
        without = float(train.correction_loss(model, (image, offset, context), plain, labels))
    assert with_term == pytest.approx(without + cfg.contrast_weight * 0.01, rel=1e-3)


def test_finetune_starts_from_init_weights(tmp_path):
    base = train.train(train.CONFIGS["small"]._replace(steps=5), seed=0)
    path = tmp_path / "base.pt"
    train.save_weights(base.model, path, "base", {})
    tuned = train.train(SMALL_FINETUNE._replace(steps=3), seed=0, init=path)
    assert tuned.initial["val_psnr_model"] != pytest.approx(tuned.initial["val_psnr_identity"])
    assert np.isfinite(tuned.losses).all() and len(tuned.losses) == 3
    wrong = tmp_path / "wrong.pt"
    train.save_weights(ContextUNet(3, 4, 2, CONTEXT_DIM), wrong, "wrong", {})
    with pytest.raises(ValueError, match="config"):
        train.train(SMALL_FINETUNE._replace(steps=1), seed=0, init=wrong)
