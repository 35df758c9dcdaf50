"""Training pairs synthesised on the training device, checkpoints and resuming (run here on the CPU)."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from worker.enhance import synth, train

SEEDS = [0, 1]
MATRIX = 64


@pytest.fixture(scope="module")
def anatomies(tmp_path_factory):
    return synth.cached_anatomies(SEEDS, tmp_path_factory.mktemp("anatomy"), MATRIX)


@pytest.fixture(scope="module")
def bank(anatomies):
    return synth.AnatomyBank(anatomies, SEEDS, "cpu")


def test_anatomy_is_rendered_once_and_read_back_from_the_cache(tmp_path, anatomies):
    first = synth.cached_anatomies([0], tmp_path, MATRIX)[0]
    cached = tmp_path / f"anatomy-{MATRIX}-0.npy"
    assert cached.exists() and first.dtype == np.float16
    assert first.shape == (30, len(synth.TISSUES), MATRIX, MATRIX)  # even seed: 2D, 30 slices
    assert anatomies[1].shape[0] == 60  # odd seed: 3D, 60 thin slices
    stamp = cached.stat().st_mtime_ns
    np.testing.assert_array_equal(synth.cached_anatomies([0], tmp_path, MATRIX)[0], first)
    assert cached.stat().st_mtime_ns == stamp
    fractions = first.astype(np.float32).sum(axis=1)
    assert fractions.max() <= 1.01 and fractions.min() >= 0.0


def test_batches_have_the_network_shapes_and_are_reproducible(bank):
    cfg = synth.SynthConfig(patch=48)
    batch = synth.PairSynthesizer(bank, cfg, seed=3).batch(6)
    assert batch.image.shape == (6, 3, 48, 48)
    assert batch.target.shape == (6, 1, 48, 48)
    assert batch.context.shape == (6, 10)
    assert all(bool(torch.isfinite(t).all()) for t in batch)
    assert float(batch.target.min()) >= 0.0 and float(batch.image.min()) >= 0.0
    again = synth.PairSynthesizer(bank, cfg, seed=3).batch(6)
    other = synth.PairSynthesizer(bank, cfg, seed=4).batch(6)
    assert all(torch.equal(a, b) for a, b in zip(batch, again, strict=True))
    assert not torch.equal(batch.image, other.image)


def test_the_random_state_round_trips_for_checkpoints(bank):
    synthesizer = synth.PairSynthesizer(bank, synth.SynthConfig(patch=32), seed=5)
    synthesizer.batch(2)
    state = synthesizer.state()
    expected = synthesizer.batch(3)
    synthesizer.batch(1)
    synthesizer.set_state(state)
    assert all(torch.equal(a, b) for a, b in zip(synthesizer.batch(3), expected, strict=True))


def test_the_input_is_the_target_plus_noise(bank):
    """Without artefacts and with a fixed noise level, input minus target is noise of about that level."""
    cfg = synth.SynthConfig(
        patch=64,
        noise=(0.05, 0.05),
        coils=(1,),
        motion_probability=0.0,
        pulsation_probability=0.0,
        lesion_probability=0.0,
    )
    batch = synth.PairSynthesizer(bank, cfg, seed=6).batch(8)
    centre, target = batch.image[:, 1].numpy(), batch.target[:, 0].numpy()
    for noisy, clean in zip(centre, target, strict=True):
        tissue = ndimage.binary_erosion(clean > 0.3 * np.percentile(clean, 99), iterations=2)
        if tissue.sum() < 50:
            continue
        residual = (noisy - clean)[tissue]
        # level 5 % of the clean 99th percentile; the normalisation divides by 0.8-1.25 x that percentile.
        ratio = residual.std() / np.percentile(clean, 99)
        assert 0.02 < ratio < 0.12
        assert abs(residual.mean()) < 0.5 * residual.std() + 0.01  # Rician bias is small in tissue


def test_synth_training_runs_and_a_cut_off_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    cfg = train.CONFIGS["synth-small"]._replace(steps=6, val_pairs=8)
    cache = tmp_path / "cache"
    whole = train.train(cfg, seed=0, cache=cache)
    assert whole.steps == 6 and len(whole.losses) == 6
    assert np.isfinite(whole.final["val_l1"])

    checkpoint = tmp_path / "run.ckpt"
    calls = {"n": 0}
    original = train.SynthPairs.batch

    def cut_off_at_the_fourth_step(self, n):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # as a worker killed mid-run
        return original(self, n)

    monkeypatch.setattr(train.SynthPairs, "batch", cut_off_at_the_fourth_step)
    with pytest.raises(KeyboardInterrupt):
        train.train(cfg, seed=0, cache=cache, checkpoint=checkpoint, checkpoint_minutes=0.0)
    assert torch.load(checkpoint, weights_only=False)["step"] == 3
    monkeypatch.setattr(train.SynthPairs, "batch", original)
    resumed = train.train(cfg, seed=0, cache=cache, checkpoint=checkpoint, resume=True)
    assert resumed.steps == 6 and resumed.losses[:3] == whole.losses[:3]
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=1e-5, atol=1e-6)


def test_evaluate_moves_each_batch_to_the_model(bank):
    """The GPU run crashed because validation batches stayed on the CPU; evaluate now moves them."""
    model = train.ContextUNet(3, 8, 3, 10)
    batch = tuple(synth.PairSynthesizer(bank, synth.SynthConfig(patch=32), seed=7).batch(4))
    moved = []

    class Recording(torch.Tensor):
        def to(self, *args, **kwargs):
            moved.append(args[0] if args else kwargs.get("device"))
            return super().to(*args, **kwargs)

    result = train.evaluate(model, [tuple(t.as_subclass(Recording) for t in batch)])
    assert moved[:3] == [torch.device("cpu")] * 3  # image, target and context, before any computation
    assert np.isfinite(result["val_psnr_model"])
