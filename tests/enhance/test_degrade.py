import numpy as np
import pytest

from worker.enhance.degrade import (
    EllipticalMask,
    KmaxMask,
    PartialFourierMask,
    RandomMask,
    UniformMask,
    degrade,
    fft2c,
    ifft2c,
    random_mask,
)

MASKS = [
    lambda seed: UniformMask(2, 0.2, seed=seed),
    lambda seed: RandomMask(1.5, 0.2, seed=seed),
    lambda seed: KmaxMask(0.7, 0.9, seed=seed),
    lambda seed: PartialFourierMask(0.6, seed=seed),
    lambda seed: EllipticalMask(1.0, seed=seed),
]


@pytest.mark.parametrize("make", MASKS)
@pytest.mark.parametrize("shape", [(32, 32), (48, 40), (17, 64)])
def test_mask_shape_and_determinism(make, shape):
    mask = make(4)(shape, seed=9)
    assert mask.shape == shape and mask.dtype == bool
    assert 0.2 < mask.mean() <= 1.0
    np.testing.assert_array_equal(mask, make(4)(shape, seed=9))
    assert mask[shape[0] // 2, shape[1] // 2]


@pytest.mark.parametrize(
    "build",
    [
        lambda: UniformMask(0, 0.1),
        lambda: UniformMask(2.5, 0.1),
        lambda: RandomMask(2, 0.0),
        lambda: RandomMask(0.5, 0.1),
        lambda: KmaxMask(0.0),
        lambda: KmaxMask(0.5, 1.5),
        lambda: PartialFourierMask(0.4),
        lambda: EllipticalMask(0.0),
    ],
)
def test_bad_arguments_raise(build):
    with pytest.raises(ValueError):
        build()


def test_bad_shape_raises():
    with pytest.raises(ValueError):
        UniformMask(2, 0.2)((32,))  # type: ignore[arg-type]


def test_acceleration_is_respected():
    assert UniformMask(2, 0.1, seed=0)((64, 8)).mean() == pytest.approx(0.5 + 0.05, abs=0.05)
    assert RandomMask(2, 0.1, seed=0)((512, 8)).mean() == pytest.approx(0.5, abs=0.06)
    assert KmaxMask(0.5, 1.0)((64, 64)).mean() == pytest.approx(0.5)
    assert PartialFourierMask(0.75)((64, 64)).mean() == pytest.approx(0.75)


def test_fft_roundtrip_and_identity():
    image = np.random.default_rng(0).normal(size=(2, 16, 20))
    np.testing.assert_allclose(ifft2c(fft2c(image)).real, image, atol=1e-10)
    positive = np.abs(image).astype(np.float32)
    np.testing.assert_allclose(degrade(positive, None, 0.0, seed=1), positive, atol=1e-5)


def test_noise_level_and_determinism():
    state = np.random.get_state()
    zeros = np.zeros((4, 64, 64), dtype=np.float32)
    noisy = degrade(zeros, None, 2.0, seed=3)
    # Magnitude of complex noise is Rayleigh: mean sigma * sqrt(pi / 2).
    assert noisy.mean() == pytest.approx(2.0 * np.sqrt(np.pi / 2), rel=0.05)
    np.testing.assert_array_equal(noisy, degrade(zeros, None, 2.0, seed=3))
    assert not np.array_equal(noisy, degrade(zeros, None, 2.0, seed=4))
    assert np.random.get_state()[1].tolist() == state[1].tolist()


def test_truncation_removes_high_frequencies(t2w_volume):
    blurred = degrade(t2w_volume, KmaxMask(0.5, 0.5), 0.0, seed=0)
    edges = lambda v: np.abs(np.diff(v, axis=-1)).mean()  # noqa: E731
    assert edges(blurred) < edges(t2w_volume)
    assert blurred.mean() == pytest.approx(t2w_volume.mean(), rel=0.05)


def test_random_mask_draws_are_reproducible():
    a = [repr(random_mask(np.random.default_rng(5))) for _ in range(3)]
    assert len(set(a)) == 1
