"""Converter: tiny models built here, converted in tmp_path, compared with Keras in every mode."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from converter.convert import ConvertError, check_representative
from converter.photos import CALIBRATION_PHOTOS
from edge_runtime.classifier import Classifier
from edge_runtime.vocab import MICRO_RUNTIME, MODES, ROUTE_MODE, Mode
from tests.helpers import run_cli

pytestmark = pytest.mark.slow
PTQ_MODES = [m for m in MODES.values() if m.name != ROUTE_MODE]


@pytest.fixture(scope="module")
def tiny(tiny_keras, dataset):
    """The shared tiny model, test inputs, its Keras probabilities and a calibration set."""
    from edge_runtime.preprocess import model_input

    model, path = tiny_keras
    x = model_input(dataset.x_test[:300])
    return {
        "model": model,
        "path": path,
        "x": x,
        "rep": model_input(dataset.x_train[10000:10200]),
        "probs": model.predict(x.astype(np.float32), verbose=0),
    }


def tflite_probs(content: bytes, x: np.ndarray) -> tuple[Classifier, np.ndarray]:
    clf = Classifier(content, runtime="ai-edge-litert")
    return clf, clf.probabilities(x)


def test_every_mode_has_a_builder():
    from converter.convert import POST_TRAINING
    from converter.pipeline import BUILDERS

    assert set(BUILDERS) == set(MODES)
    assert set(POST_TRAINING) == set(MODES) - {ROUTE_MODE}


def test_a_mode_without_a_builder_is_refused(tiny):
    from converter.convert import convert_bytes
    from converter.pipeline import convert_mode

    unknown = Mode("int4", True, "int8")
    with pytest.raises(ConvertError, match="no builder for mode 'int4'"):
        convert_mode(None, unknown, options=None)
    with pytest.raises(ConvertError, match="not made by post-training quantization"):
        convert_bytes(tiny["model"], unknown, rep=tiny["rep"])


@pytest.mark.parametrize("mode", PTQ_MODES, ids=lambda m: m.name)
def test_each_mode_matches_keras(tiny, mode: Mode):
    from converter.convert import convert_bytes

    content = convert_bytes(tiny["model"], mode, rep=tiny["rep"])
    clf, probs = tflite_probs(content, tiny["x"])
    keras_probs, keras_top1 = tiny["probs"], tiny["probs"].argmax(1)
    if mode.keras_tolerance is not None:
        np.testing.assert_allclose(probs, keras_probs, atol=mode.keras_tolerance)
    else:  # dynamic, int8-ptq: top-1 agreement
        assert np.mean(probs.argmax(1) == keras_top1) >= 0.95
    assert clf.input.dtype == np.dtype(mode.io_dtype)


@pytest.mark.parametrize(
    ("io_type", "dtype"), [("int8", np.int8), ("uint8", np.uint8), ("float32", np.float32)]
)
def test_int8_io_types(tiny, io_type: str, dtype):
    from converter.convert import convert_bytes

    content = convert_bytes(tiny["model"], MODES["int8-ptq"], rep=tiny["rep"], io_type=io_type)
    clf, probs = tflite_probs(content, tiny["x"])
    assert clf.input.dtype == np.dtype(dtype) and clf.output.dtype == np.dtype(dtype)
    if io_type != "float32":
        # Rescaling inside the model makes a raw pixel map exactly onto the integer input.
        assert clf.input.scale == 1.0 and clf.input.zero_point == (-128 if io_type == "int8" else 0)
    assert np.mean(probs.argmax(1) == tiny["probs"].argmax(1)) >= 0.95


@pytest.mark.parametrize("mode", PTQ_MODES, ids=lambda m: m.name)
def test_each_mode_loads_and_agrees_on_tflite_runtime_2_14(tiny, mode: Mode, tmp_path: Path):
    """tflite-runtime runs in a subprocess (it cannot share a process with TensorFlow)."""
    from converter.convert import convert_bytes
    from edge_runtime.worker import Job, run_job

    content = convert_bytes(tiny["model"], mode, rep=tiny["rep"])
    model, inputs, outputs = tmp_path / "m.tflite", tmp_path / "x.npy", tmp_path / "p.npy"
    model.write_bytes(content)
    np.save(inputs, tiny["x"])
    job = Job(model=str(model), runtime="tflite-runtime", inputs=str(inputs), outputs=str(outputs))
    report = run_job(job)
    assert report.ok, report
    assert report.version.startswith("2.14")
    probs_214 = np.load(outputs)
    clf, probs = tflite_probs(content, tiny["x"])
    assert np.mean(probs_214.argmax(1) == probs.argmax(1)) >= 0.99
    if clf.output.scale:  # quantized output: compare in output steps
        steps = np.round(np.abs(probs_214 - probs) / clf.output.scale)
        # The two runtimes use different int8 kernels; most outputs match to one step, a few
        # differ by more (measured on the trained model: 99.0% within one step, max 11+).
        assert np.mean(steps <= 1) >= 0.98
    else:
        np.testing.assert_allclose(probs_214, probs, atol=mode.float_tolerance)


def test_convert_models_writes_validated_models_and_sidecars(tiny, tmp_path: Path):
    import hashlib

    from converter.pipeline import ConvertOptions, convert_models

    options = ConvertOptions(
        model=tiny["path"],
        modes=(MODES["float32"], MODES["int8-ptq"]),
        out_dir=tmp_path,
        samples=100,
        c_array=True,
    )
    sidecars = convert_models(options)
    assert [s.quantization for s in sidecars] == ["float32", "int8-ptq"]
    for mode in ("float32", "int8-ptq"):
        model = tmp_path / f"model_{mode}.tflite"
        meta = json.loads(model.with_suffix(".json").read_text())
        assert meta["sha256"]["tflite"] == hashlib.sha256(model.read_bytes()).hexdigest()
        assert (
            meta["sha256"]["source_keras"] == hashlib.sha256(tiny["path"].read_bytes()).hexdigest()
        )
        assert meta["labels"][0] == "T-shirt/top" and len(meta["labels"]) == 10
        assert meta["size_bytes"] == model.stat().st_size
        assert meta["min_runtime_version"] and meta["versions"]["tensorflow"].startswith("2.21")
        assert meta["runtimes"] == {
            "ai-edge-litert": True,
            "tflite-runtime": True,
            "tflite-micro": True,
        }
        assert meta["runtime_errors"] == {} and meta["microcontroller"]["arena_bytes"] > 1000
        pairs = {tuple(p["runtimes"]) for p in meta["cross_runtime"]}
        assert ("ai-edge-litert", "tflite-micro") in pairs and len(pairs) == 3
        for key in (
            "test_accuracy",
            "float_test_accuracy",
            "accuracy_drop_pp",
            "agreement_with_float",
            "per_class_delta_pp",
            "input",
            "output",
        ):
            assert key in meta
        Classifier.from_file(model)  # the runtime accepts what the converter wrote
        symbol = f"model_{mode}".replace("-", "_")
        header = (tmp_path / f"model_{mode}.h").read_text()
        assert f"extern const unsigned int {symbol}_len;" in header
        source = (tmp_path / f"model_{mode}.cc").read_text()
        assert f'#include "model_{mode}.h"' in source and "alignas(16)" in source
        array = source.split("{", 1)[1].split("}", 1)[0]
        assert (
            bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", array)) == model.read_bytes()
        )
        assert f"{symbol}_len = {model.stat().st_size};" in source
    int8 = json.loads((tmp_path / "model_int8-ptq.json").read_text())
    # Calibration: the training images asked for, and the training photos beside them.
    assert int8["representative"]["samples"] == 100 + CALIBRATION_PHOTOS
    assert (
        int8["representative"]["source"]
        == f"100 training images and {CALIBRATION_PHOTOS} training photos"
    )
    assert int8["input"]["dtype"] == "int8"
    assert json.loads((tmp_path / "model_float32.json").read_text())["representative"] is None


def test_representative_set_checks():
    with pytest.raises(ConvertError, match="expected raw pixels 0..255"):
        check_representative(np.random.default_rng(0).random((10, 28, 28, 1)))  # a 0-1 set
    with pytest.raises(ConvertError, match=r"shape \(10, 28, 28\)"):
        check_representative(np.zeros((10, 28, 28), np.uint8))
    check_representative(np.full((2, 28, 28, 1), 255, np.uint8))


def convert_cli(model: Path, out: Path, *extra: str):
    return run_cli(
        "fmnist-convert",
        "--model",
        str(model),
        "--quantize",
        "float32",
        "--out-dir",
        str(out),
        *extra,
    )


def assert_one_line_error(r, *fragments: str) -> None:
    assert r.returncode == 1, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_error_missing_and_corrupt_keras(tmp_path: Path, tiny):
    assert_one_line_error(
        convert_cli(tmp_path / "nope.keras", tmp_path / "o"), "no such model file"
    )
    junk = tmp_path / "junk.keras"
    junk.write_bytes(np.random.default_rng(0).bytes(2000))
    assert_one_line_error(convert_cli(junk, tmp_path / "o"), "not a .keras model")
    cut = tmp_path / "cut.keras"
    cut.write_bytes(tiny["path"].read_bytes()[:3000])
    assert_one_line_error(convert_cli(cut, tmp_path / "o"), str(cut))
    assert list((tmp_path / "o").glob("model_*")) == [], (
        "nothing may be written for a failed conversion"
    )


def test_error_lambda_layer_is_refused(tmp_path: Path):
    import keras

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Lambda(lambda t: t * 2.0),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    path = tmp_path / "lambda.keras"
    model.save(path)
    assert_one_line_error(convert_cli(path, tmp_path / "o"), "Lambda")


def test_error_custom_object_is_refused(tmp_path: Path):
    import keras

    @keras.saving.register_keras_serializable(package="only_in_this_test")
    class Doubler(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            Doubler(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    path = tmp_path / "custom.keras"
    model.save(path)
    assert_one_line_error(convert_cli(path, tmp_path / "o"), str(path))


def test_error_unwritable_out_dir(tmp_path: Path, tiny):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(convert_cli(tiny["path"], blocker / "out"), "cannot create output folder")


def test_error_unknown_mode_is_a_usage_error(tiny, tmp_path: Path):
    r = run_cli("fmnist-convert", "--model", str(tiny["path"]), "--quantize", "int4")
    assert r.returncode == 2 and "Invalid value for '--quantize'" in r.stderr


def test_zip_that_is_not_keras(tmp_path: Path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    assert_one_line_error(convert_cli(path, tmp_path / "o"), str(path))


def test_real_short_trained_seed_model_accuracy_drop(dataset, tmp_path: Path):
    """The real stack, briefly trained: float16 and int8 must stay close to float on 10,000 images."""
    from converter.pipeline import ConvertOptions, convert_models
    from trainer.train import TrainConfig, save_model, train

    result = train(dataset, TrainConfig(epochs=2, batch_size=64, limit=12000, validation_size=600))
    path = tmp_path / "short.keras"
    save_model(result.model, path)
    modes = (MODES["float16"], MODES["int8"])
    options = ConvertOptions(model=path, modes=modes, out_dir=tmp_path, samples=300)
    by_mode = {s.quantization: s for s in convert_models(options)}
    assert by_mode["float16"].float_test_accuracy > 0.75  # 2 short epochs: ~0.79 seen
    assert abs(by_mode["float16"].accuracy_drop_pp) <= 0.1
    assert by_mode["int8"].accuracy_drop_pp <= 1.0
    assert by_mode["int8"].agreement_with_float >= 0.96
    # TFLM has no float16 kernels: the sidecar says so, naming no scratch file that is gone.
    assert by_mode["float16"].runtimes[MICRO_RUNTIME] is False
    assert by_mode["float16"].runtime_errors[MICRO_RUNTIME].startswith("cannot load with")


# --- the int8 route's pieces ----------------------------------------------------------------


def seed_model_with_random_batchnorm(seed: int, *, gamma_sign: float = 1.0):
    """The seed network with random weights and BatchNorm statistics far from the identity."""
    import keras

    from trainer.model import build_model

    keras.utils.set_random_seed(seed)
    model = build_model()
    rng = np.random.default_rng(seed)
    for name in ("bn1", "bn2"):
        layer = model.get_layer(name)
        channels = layer.get_weights()[0].shape
        layer.set_weights(
            [
                gamma_sign * rng.uniform(0.2, 3.0, channels),  # gamma
                rng.normal(0, 1, channels),  # beta
                rng.uniform(0, 2, channels),  # moving mean
                rng.uniform(0.1, 4, channels),  # moving variance
            ]
        )
    return model


def test_batchnorm_rewrite_is_exact_on_the_seed_stack(dataset):
    import keras

    from converter.exact import build_rewritten, check_same_function, fold_batchnorm
    from edge_runtime.preprocess import model_input

    model = seed_model_with_random_batchnorm(1)
    rewritten = build_rewritten(keras, fold_batchnorm(model))
    kinds = [type(layer).__name__ for layer in rewritten.layers]
    assert "BatchNormalization" not in kinds and "Dropout" not in kinds
    assert rewritten.get_layer("logits").activation.__name__ == "linear"
    result = check_same_function(model, rewritten, model_input(dataset.x_test[:2000]))
    assert result["max_abs_diff"] < 1e-5 and result["argmax_identical"] > 0.999, result


def test_batchnorm_rewrite_refuses_negative_scales():
    from converter.exact import fold_batchnorm

    with pytest.raises(ConvertError, match="scale ≤ 0.*int8-ptq"):
        fold_batchnorm(seed_model_with_random_batchnorm(2, gamma_sign=-1.0))


def test_route_on_another_network_is_a_clear_error(tiny, tmp_path: Path):
    r = run_cli("fmnist-convert", "--model", str(tiny["path"]), "--quantize", "int8",
                "--out-dir", str(tmp_path))  # fmt: skip
    assert_one_line_error(r, "lacks its layers", "--quantize int8-ptq")


def test_output_grid_moves_only_the_output_quantization(tiny):
    from converter.convert import convert_bytes, set_output_grid

    content = convert_bytes(tiny["model"], MODES["int8-ptq"], rep=tiny["rep"])
    changed = set_output_grid(content, low=-1.0, high=1.55)
    before, after = Classifier(content), Classifier(changed)
    assert after.output.scale == pytest.approx(2.55 / 255) and after.output.zero_point == -28
    assert (before.input.scale, before.input.zero_point) == (
        after.input.scale,
        after.input.zero_point,
    )
    assert len(changed) == pytest.approx(len(content), abs=64)
