"""Registered models run as ONNX through the same path as the built-in CE U-Net: the exported CE U-Net gives the
torch result, and the registration check refuses each broken model with its reason."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

from tests.enhancement_models.onnx_models import BoxDenoiser, NonFinite, ReturnsInput, WrongShape, onnx_bytes
from worker.enhance import inference, model_check, onnx_export
from worker.enhance.contract import BUILT_IN_CONTRACT, InputContract
from worker.enhance.onnx_runner import ModelContractError, OnnxRunner
from worker.enhance.phantom import default_params

FACTOR = 16.0


@pytest.fixture(scope="module")
def noisy(t2w_volume) -> np.ndarray:
    rng = np.random.default_rng(5)
    sigma = 0.03 * float(np.percentile(t2w_volume, 99))
    return np.hypot(t2w_volume + rng.normal(0, sigma, t2w_volume.shape), rng.normal(0, sigma, t2w_volume.shape))


@pytest.fixture(scope="module")
def tiny_onnx(tiny_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    contract = onnx_export.export_builtin(path, weights=tiny_weights)
    return path.read_bytes(), contract


@pytest.mark.parametrize("tile", [None, 96])
def test_the_exported_ce_unet_gives_the_torch_result(tiny_weights, tiny_onnx, noisy, tile):
    data, contract = tiny_onnx
    assert contract == BUILT_IN_CONTRACT._replace(pad_multiple=4)  # the tiny net pools twice
    volume = np.pad(noisy, ((0, 0), (0, 90), (0, 70)), mode="reflect")  # 130 x 118: tiled at 96 on both axes
    params = default_params("T2W")
    expected = inference.enhance_volume(volume, params, FACTOR, "cpu", weights=tiny_weights, tile=tile)
    runner = OnnxRunner(data, contract, "cpu")
    got = inference.enhance_volume(volume, params, FACTOR, runner=runner, tile=tile)
    assert runner.runtime.startswith("onnxruntime ") and runner.device.type == "cpu"
    assert not np.array_equal(got, volume)
    assert np.abs(got - expected).max() <= 1e-4 * np.percentile(volume, 99)


def test_a_context_free_model_gets_only_its_slices(noisy):
    runner = OnnxRunner(onnx_bytes(BoxDenoiser(), slices=5), InputContract(slices=5, normalisation="none"), "cpu")
    out = inference.enhance_volume(noisy, default_params("T2W"), FACTOR, runner=runner)
    assert out.shape == noisy.shape and np.isfinite(out).all()


@pytest.mark.parametrize(
    ("data", "contract", "code"),
    [
        (b"\x08\x07 definitely not a model", InputContract(), "not_onnx"),
        ("box", InputContract(slices=5), "wrong_inputs"),
        ("box", InputContract(context_input=True), "wrong_inputs"),
        ("box-fixed", InputContract(), "wrong_inputs"),
        ("wrong-shape", InputContract(), "wrong_output_shape"),
        ("non-finite", InputContract(), "non_finite"),
        ("returns-input", InputContract(), "returns_input"),
        ("box", InputContract(slices=2), "bad_contract"),
    ],
)
def test_the_registration_check_refuses_with_a_reason(noisy, data, contract, code):
    models = {
        "box": lambda: onnx_bytes(BoxDenoiser()),
        "box-fixed": lambda: onnx_bytes(BoxDenoiser(), dynamic=False),
        "wrong-shape": lambda: onnx_bytes(WrongShape()),
        "non-finite": lambda: onnx_bytes(NonFinite()),
        "returns-input": lambda: onnx_bytes(ReturnsInput()),
    }
    model = models[data]() if isinstance(data, str) else data
    report = model_check.check_model(model, contract, 60.0, noisy.astype(np.float32), default_params("T2W"))
    assert not report["ok"] and report["code"] == code, report
    assert report["reason"]


def test_the_registration_check_passes_a_denoiser_and_stops_a_slow_one(noisy):
    volume, params = noisy.astype(np.float32), default_params("T2W")
    report = model_check.check_model(onnx_bytes(BoxDenoiser()), InputContract(), 60.0, volume, params)
    assert report["ok"], report
    assert report["seconds"] > 0 and report["runtime"].startswith("onnxruntime") and "qa" in report
    slow = model_check.check_model(onnx_bytes(BoxDenoiser()), InputContract(), 1e-6, volume, params)
    assert (slow["ok"], slow["code"]) == (False, "too_slow")


def test_a_model_with_external_data_is_refused(tmp_path, noisy):
    proto = onnx.load_model_from_string(onnx_bytes(BoxDenoiser()))
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.zeros(2048, np.float32), "spare"))
    onnx.save_model(proto, tmp_path / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.data", size_threshold=0)
    report = model_check.check_model((tmp_path / "m.onnx").read_bytes(), InputContract(), 60.0,
                                     noisy.astype(np.float32), default_params("T2W"))
    assert report["code"] == "external_data", report


def test_a_model_that_breaks_its_contract_while_running_fails_with_the_reason():
    runner = OnnxRunner(onnx_bytes(WrongShape()), InputContract(), "cpu")
    with pytest.raises(ModelContractError) as error:
        inference.enhance_volume(np.ones((3, 32, 32), np.float32) * 100, default_params("T2W"), FACTOR, runner=runner)
    assert error.value.code == "wrong_output_shape" and "[3, 1, 32, 32]" in str(error.value)


@pytest.mark.parametrize(
    ("contract", "words"),
    [
        (InputContract(slices=4), "odd"),
        (InputContract(normalisation="zscore"), "normalisation"),
        (InputContract(max_matrix=64), "max_matrix"),
        (InputContract(max_matrix=500, pad_multiple=16), "multiple of pad_multiple"),
    ],
)
def test_a_contract_with_bad_values_names_them(contract, words):
    with pytest.raises(ValueError, match=words):
        contract.checked()
