"""The residual check fails what a reader must never be asked to compare: no change, and too much change."""

import numpy as np
import pytest
from scipy import ndimage

from worker.enhance.qa import BIAS, FAILURE_MESSAGES, NO_CHANGE, STRUCTURED, noise_sd, residual_stats


@pytest.fixture(scope="module")
def noisy(t2w_volume) -> np.ndarray:
    """The phantom with Gaussian noise of 5 % of its peak signal, like a conventional series."""
    rng = np.random.default_rng(3)
    return t2w_volume + rng.normal(0.0, 0.05 * float(t2w_volume.max()), t2w_volume.shape)


def test_noise_estimate_finds_the_added_noise(noisy, t2w_volume):
    mask = t2w_volume > 0.1 * np.percentile(t2w_volume, 99)
    assert noise_sd(noisy, mask) == pytest.approx(0.05 * float(t2w_volume.max()), rel=0.2)


def test_identity_fails_as_no_change(noisy):
    stats = residual_stats(noisy, noisy.copy())
    assert stats.flagged and stats.failures == (NO_CHANGE,)
    assert stats.sd == 0 and stats.as_dict()["failures"] == [NO_CHANGE]


def test_nearly_identity_fails_as_no_change(noisy, t2w_volume):
    """Factor 1.02 of a perfect denoiser removes 2 % of the noise: still nothing to compare."""
    nearly = noisy - 0.02 * (noisy - t2w_volume)
    stats = residual_stats(noisy, nearly)
    assert NO_CHANGE in stats.failures and stats.flagged and stats.relative_sd < 0.1


def test_denoising_passes(noisy, t2w_volume):
    stats = residual_stats(noisy, t2w_volume)
    assert not stats.flagged and stats.failures == ()
    assert 0.7 < stats.relative_sd < 1.3


def test_removed_structure_fails_as_too_much_change(noisy, t2w_volume):
    blurred = ndimage.gaussian_filter(t2w_volume, (0, 3, 3))
    stats = residual_stats(noisy, blurred)
    assert STRUCTURED in stats.failures and NO_CHANGE not in stats.failures and stats.flagged


def test_intensity_drift_fails_as_too_much_change(noisy):
    stats = residual_stats(noisy, noisy * 0.95)
    assert BIAS in stats.failures and stats.flagged
    shifted = residual_stats(noisy, noisy - 0.05 * noisy.mean())
    assert shifted.failures == (BIAS,), "a constant shift is a bias, not 'no change'"


def test_every_failure_has_a_message_for_coordinators():
    assert set(FAILURE_MESSAGES) == {NO_CHANGE, STRUCTURED, BIAS}
    assert all(len(text) > 20 for text in FAILURE_MESSAGES.values())
