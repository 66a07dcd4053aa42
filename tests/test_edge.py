"""The edge runtime with the committed tiny fixture models: no TensorFlow anywhere in here.

Runtime-specific checks run the CLI in a subprocess: tflite-runtime 2.14 cannot create an
interpreter in a process that has imported TensorFlow (which other tests in the session do).
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime.classifier import Classifier, ModelError, dequantize, quantize, softmax
from edge_runtime.vocab import MICRO_RUNTIME, PTQ_MODE, RUNTIMES
from tests.helpers import ROOT, run_cli, write_video

FIXTURES = Path(__file__).parent / "fixtures"
INT8 = FIXTURES / "tiny_int8.tflite"
FLOAT32 = FIXTURES / "tiny_float32.tflite"


# --- quantization arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point", "values", "expected"),
    [
        (np.int8, 1.0, -128, [0, 1, 128, 255], [-128, -127, 0, 127]),  # this model's input
        (np.uint8, 1.0, 0, [0, 255, 300, -5], [0, 255, 255, 0]),  # saturates
        (np.int8, 0.5, 10, [-1.0, 0.0, 1.26], [8, 10, 13]),
        (np.int16, 1 / 32768, 0, [-1.0, 0.5, 2.0], [-32768, 16384, 32767]),
        (np.float32, 0.0, 0, [0.0, 254.5], [0.0, 254.5]),  # scale 0: not quantized
    ],
)
def test_quantize(dtype, scale, zero_point, values, expected):
    q = quantize(np.array(values), dtype, scale, zero_point)
    assert q.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(q, np.array(expected, dtype))


@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point"),
    [(np.int8, 1 / 256, -128), (np.uint8, 1 / 255, 0), (np.int16, 1 / 32768, 0)],
)
def test_dequantize_inverts_quantize_within_half_a_step(dtype, scale, zero_point):
    x = np.linspace(0, 0.99, 50)
    back = dequantize(quantize(x, dtype, scale, zero_point), scale, zero_point)
    assert back.dtype == np.float32
    assert np.abs(back - x).max() <= scale / 2 + 1e-7


def test_int8_model_input_is_exact_for_raw_pixels():
    """With Rescaling inside the model, the int8 input's scale is 1 and zero point -128."""
    clf = Classifier.from_file(INT8)
    assert (clf.input.dtype, clf.input.scale, clf.input.zero_point) == (
        np.dtype(np.int8),
        1.0,
        -128,
    )
    pixels = np.arange(256)
    np.testing.assert_array_equal(
        dequantize(quantize(pixels, np.int8, 1.0, -128), 1.0, -128), pixels
    )


# --- Classifier --------------------------------------------------------------------------------


def test_classifier_reads_sidecar_and_predicts(tmp_path: Path):
    clf = Classifier.from_file(INT8)
    assert clf.sidecar.quantization == PTQ_MODE and clf.labels[9] == "Ankle boot"
    batch = np.zeros((3, 28, 28, 1), np.uint8)
    probs = clf.probabilities(batch)
    assert probs.shape == (3, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.02)
    pred = clf.classify(Image.new("L", (28, 28)), top_k=3)
    assert len(pred.top_k) == 3 and pred.label == pred.top_k[0][0]


def test_logits_output_gets_a_softmax():
    content = INT8.read_bytes()
    as_logits = Classifier(content, output_is="logits")
    batch = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    raw = as_logits.outputs(batch)
    np.testing.assert_allclose(as_logits.probabilities(batch), softmax(raw), rtol=1e-6)
    np.testing.assert_allclose(softmax(raw).sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(Classifier(content).probabilities(batch), raw)


def test_the_mirror_average_answers_with_the_image_and_its_mirror_image():
    content = INT8.read_bytes()
    mirror, plain = Classifier(content, mirror_average=True), Classifier(content)
    batch = np.random.default_rng(1).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    flipped = plain.probabilities(batch[:, :, ::-1])
    expected = (plain.probabilities(batch) + flipped) / 2
    np.testing.assert_allclose(mirror.probabilities(batch), expected, rtol=1e-6)
    outputs, answers = mirror.outputs_and_answers(batch)
    np.testing.assert_array_equal(outputs, plain.outputs(batch))  # one invoke per image
    np.testing.assert_array_equal(answers, mirror.probabilities(batch))
    assert not np.allclose(answers, plain.probabilities(batch))  # the mirror counted


def test_int8_and_float32_fixtures_agree_on_real_images(dataset):
    from edge_runtime.preprocess import model_input

    x = model_input(dataset.x_test[:500])
    a = Classifier.from_file(INT8).predict_classes(x)
    b = Classifier.from_file(FLOAT32).predict_classes(x)
    assert np.mean(a == b) > 0.95
    assert np.mean(b == dataset.y_test[:500]) > 0.6  # a tiny model, but it learned something


def copy_model(tmp_path: Path, name: str = "m") -> Path:
    for ext in (".tflite", ".json"):
        shutil.copy(INT8.with_suffix(ext), tmp_path / f"{name}{ext}")
    return tmp_path / f"{name}.tflite"


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda m: m.write_bytes(m.read_bytes()[:1000]), "does not match its sidecar"),
        (lambda m: m.write_bytes(b""), "empty file"),
        (lambda m: m.write_bytes(np.random.default_rng(0).bytes(4000)), "not a TFLite model"),
        (lambda m: m.with_suffix(".json").unlink(), "sidecar m.json is missing"),
        (lambda m: m.with_suffix(".json").write_text("{not json"), "unreadable sidecar"),
        (lambda m: m.with_suffix(".json").write_text('{"format": "x"}'), "not an fmnist sidecar"),
        (lambda m: m.unlink(), "no such model file"),
        (lambda m: m.with_suffix(".json").write_text("[" * 100_000), "nested too deeply"),
        (lambda m: m.with_suffix(".json").write_text("1" * 5000), "unreadable sidecar"),
    ],
)
def test_bad_models_are_one_line_errors(tmp_path: Path, damage, problem: str):
    model = copy_model(tmp_path)
    damage(model)
    with pytest.raises(ModelError, match=problem) as err:
        Classifier.from_file(model)
    assert "\n" not in str(err.value)


def test_keras_file_given_by_mistake(tmp_path: Path):
    import zipfile

    keras_file = tmp_path / "model.keras"
    with zipfile.ZipFile(keras_file, "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(ModelError, match="is a Keras model"):
        Classifier.from_file(keras_file)


# --- fmnist-edge classify ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """Good, unusual and bad inputs."""
    d = tmp_path_factory.mktemp("images")
    shot = np.full((300, 200, 3), 255, np.uint8)
    shot[40:260, 50:150] = (30, 30, 120)
    paths = {
        "shirt": d / "shirt.png",
        "unicode": d / "рубашка ✓.jpg",
        "tiny": d / "one.bmp",
        "cmyk": d / "cmyk.tiff",
        "rgba": d / "rgba.png",
        "i16": d / "i16.png",
        "white": d / "white.png",
        "gif": d / "anim.gif",
    }
    Image.fromarray(shot).save(paths["shirt"])
    Image.fromarray(shot).save(paths["unicode"])
    Image.new("RGB", (1, 1), "white").save(paths["tiny"])
    Image.fromarray(shot).convert("CMYK").save(paths["cmyk"])
    Image.fromarray(shot).convert("RGBA").save(paths["rgba"])
    Image.fromarray(np.asarray(Image.fromarray(shot).convert("L")).astype(np.uint16) * 257).save(
        paths["i16"]
    )
    Image.new("L", (64, 64), 255).save(paths["white"])
    Image.fromarray(shot).save(
        paths["gif"], save_all=True, append_images=[Image.new("RGB", (200, 300))]
    )
    bad = {
        "empty": d / "empty.png",
        "text": d / "notes.png",
        "truncated": d / "cut.png",
        "random": d / "noise.jpg",
        "dir": d / "folder.png",
    }
    bad["empty"].write_bytes(b"")
    bad["text"].write_text("not an image")
    bad["truncated"].write_bytes(paths["shirt"].read_bytes()[:200])
    bad["random"].write_bytes(np.random.default_rng(1).bytes(3000))
    bad["dir"].mkdir()
    return {**paths, **{f"bad_{k}": v for k, v in bad.items()}}


def classify(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("fmnist-edge", "classify", "--model", str(INT8), *args)


def test_a_reader_that_stops_reading_ends_the_command_quietly(images):
    """`fmnist-edge classify ... | head -1` ends like a Unix tool: no error line, exit 141."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", "classify", "--model", str(INT8),
         *[str(images["shirt"])] * 50],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    proc.stdout.close()  # before the child has printed anything
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and stderr == "", stderr


def test_classify_json_shape_and_exit_0(images):
    good = [
        str(images[k]) for k in ("shirt", "unicode", "tiny", "cmyk", "rgba", "i16", "white", "gif")
    ]
    r = classify("--json", "--top-k", "3", *good)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["path"] for row in rows] == good
    for row in rows:
        assert set(row) == {"path", "label", "class_id", "score", "not_sure", "top_k"}
        assert len(row["top_k"]) == 3 and row["top_k"][0]["label"] == row["label"]
        assert set(row["top_k"][0]) == {"label", "class_id", "score"}
    assert r.stderr == ""


def test_batch_keeps_going_past_bad_files_and_exits_1(images):
    order = ["bad_empty", "shirt", "bad_text", "bad_truncated", "bad_random", "bad_dir", "tiny"]
    r = classify("--json", *[str(images[k]) for k in order], "/no/such/file.png")
    assert r.returncode == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 8
    assert [("error" in row) for row in rows] == [True, False, True, True, True, True, False, True]
    errors = r.stderr.splitlines()
    assert len(errors) == 6 and "Traceback" not in r.stderr
    assert errors[0] == f"error: {images['bad_empty']}: empty file"
    assert "is a directory" in errors[4] and "/no/such/file.png: no such file" in errors[5]


def test_human_output_and_top_k(images):
    r = classify("--top-k", "2", str(images["shirt"]))
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{images['shirt']}: ") and lines[0].endswith("%)")
    assert lines[1].strip().startswith("1.") and lines[2].strip().startswith("2.")


def test_directories_and_globs(images):
    folder = images["shirt"].parent
    by_dir = classify("--json", str(folder))
    by_glob = classify("--json", str(folder / "*.png"))
    dir_paths = [json.loads(x)["path"] for x in by_dir.stdout.splitlines()]
    glob_paths = [json.loads(x)["path"] for x in by_glob.stdout.splitlines()]
    assert str(images["unicode"]) in dir_paths and str(images["cmyk"]) in dir_paths
    assert all(p.endswith(".png") for p in glob_paths) and str(images["shirt"]) in glob_paths


def test_save_preprocessed(images, tmp_path: Path):
    r = classify("--save-preprocessed", str(tmp_path / "seen"), str(images["shirt"]))
    assert r.returncode == 0
    seen = np.asarray(Image.open(tmp_path / "seen" / "shirt.preprocessed.png"))
    assert seen.shape == (28, 28) and seen[0, 0] == 0 and seen[14, 14] > 100


def test_paths_the_system_refuses_are_bad_files_too(images, tmp_path: Path):
    """A symlink loop, a path through a file and a name too long fail alone, not the batch."""
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    refused = [tmp_path / "a.png", images["shirt"] / "x.png", tmp_path / ("L" * 300 + ".png")]
    r = classify("--json", *[str(p) for p in refused], str(images["shirt"]))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [("error" in row) for row in rows] == [True, True, True, False]
    assert len(r.stderr.splitlines()) == 3
    assert "symbolic links" in rows[0]["error"] and "Not a directory" in rows[1]["error"]


def test_save_preprocessed_keeps_every_image_and_goes_on_past_a_write_error(images, tmp_path: Path):
    twin = tmp_path / "other" / "shirt.png"  # the same stem as images["shirt"]
    twin.parent.mkdir()
    Image.new("L", (28, 28)).save(twin)
    seen = tmp_path / "seen"
    (seen / "one.preprocessed.png").mkdir(parents=True)  # in the way of one.bmp's file
    r = classify(
        "--json", "--save-preprocessed", str(seen), str(images["shirt"]), str(twin),
        str(images["tiny"]), str(images["rgba"]),
    )  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [json.loads(line)["path"] for line in r.stdout.splitlines()] == [
        str(images["shirt"]), str(twin), str(images["tiny"]), str(images["rgba"]),
    ]  # fmt: skip
    assert r.stderr == f"error: {images['tiny']}: cannot save what the model saw: Is a directory\n"
    assert np.asarray(Image.open(seen / "shirt-2.preprocessed.png")).max() == 0  # the twin's
    assert np.asarray(Image.open(seen / "shirt.preprocessed.png")).max() > 100
    assert (seen / "rgba.preprocessed.png").is_file()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "Missing argument"),
        (["--top-k", "0", "x.png"], 2, "Invalid value for '--top-k'"),
        (["--runtime", "tensorflow", "x.png"], 2, "Invalid value for '--runtime'"),
        (["--not-sure-below", "nan", "x.png"], 2, "'nan' is not a finite number"),
    ],
)
def test_usage_errors(args, code, message):
    r = run_cli("fmnist-edge", "classify", *args)
    assert r.returncode == code and message in r.stderr


def test_model_errors_are_one_line(tmp_path: Path, images):
    model = copy_model(tmp_path)
    model.write_bytes(model.read_bytes()[:-10])
    r = run_cli("fmnist-edge", "classify", "--model", str(model), str(images["shirt"]))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"error: {model}: SHA-256")


def test_default_model_from_environment(images):
    r = run_cli("fmnist-edge", "classify", str(images["shirt"]), env={"FMNIST_MODEL": str(INT8)})
    assert r.returncode == 0, r.stderr


INSTALLED_HERE = [r for r in RUNTIMES if r != MICRO_RUNTIME or platform.machine() == "x86_64"]
"""tflite-micro publishes x86-64 wheels only (pyproject installs it there), so the emulated
aarch64 run of these tests has the two Pi runtimes and `make test` has all three."""


@pytest.mark.parametrize("runtime", INSTALLED_HERE)
def test_each_runtime_forced_gives_the_same_answer(images, runtime: str):
    r = classify("--json", "--runtime", runtime, "--top-k", "10", str(images["shirt"]))
    assert r.returncode == 0, r.stderr
    reference = classify("--json", "--top-k", "10", str(images["shirt"]))
    assert json.loads(r.stdout) == json.loads(reference.stdout)


@pytest.mark.parametrize("runtime", [r for r in INSTALLED_HERE if r != "tflite-runtime"])
def test_a_damaged_model_with_a_sidecar_made_for_it_is_one_line(tmp_path: Path, runtime: str):
    """The SHA-256 check stops a damaged copy; a sidecar remade for the damaged bytes reaches
    the runtime, which must refuse them in one line. (tflite-runtime 2.14 does not verify a
    model's flatbuffer and can crash on such bytes: the README says so.)"""
    import hashlib

    for damaged in (INT8.read_bytes()[:3000], INT8.read_bytes()[:8] + bytes(range(256)) * 16):
        model = copy_model(tmp_path)
        model.write_bytes(damaged)
        sidecar = json.loads(model.with_suffix(".json").read_text())
        sidecar["sha256"]["tflite"] = hashlib.sha256(damaged).hexdigest()
        model.with_suffix(".json").write_text(json.dumps(sidecar))
        with pytest.raises(ModelError, match=f"cannot load with {runtime}") as err:
            Classifier.from_file(model, runtime=runtime)
        assert "\n" not in str(err.value)


def test_missing_runtime_names_the_extra(tmp_path: Path):
    """Hide both runtimes: the error must say which extra to install, not exit from an import."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\nclass B:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('ai_edge_litert', 'tflite_runtime'):\n"
        "            raise ImportError(name)\nsys.meta_path.insert(0, B())\n"
    )
    r = run_cli(
        "fmnist-edge", "classify", "--model", str(INT8), "x.png", env={"PYTHONPATH": str(tmp_path)}
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "pip install '.[edge]'" in r.stderr


def test_edge_cli_never_imports_tensorflow(images):
    """classify loads numpy, Pillow, OpenCV (it finds the garment) and the interpreter only."""
    code = (
        "import sys\n"
        "from edge_runtime.cli import main\n"
        "try:\n"
        f"    main(['classify', '--model', {str(INT8)!r}, {str(images['shirt'])!r}])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "               ('tensorflow', 'keras', 'trainer', 'converter', 'benchmarks', 'matplotlib',\n"
        "                'starlette', 'uvicorn', 'prometheus_client'))\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout


def test_edge_runtime_source_imports_nothing_heavy():
    """A static check of every module, including code paths the run above does not reach."""
    import ast

    allowed_third_party = {
        "numpy",
        "PIL",
        "click",
        "cv2",
        "picamera2",
        "ai_edge_litert",
        "tflite_runtime",
        "tflite_micro",
        # fmnist-edge serve (the serve extra)
        "starlette",
        "uvicorn",
        "prometheus_client",
    }
    sources = sorted((ROOT / "edge_runtime").rglob("*.py"))
    assert len(sources) >= 10, sources  # anchored to the repository, whatever the cwd
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert (
                    top in allowed_third_party
                    or top == "edge_runtime"
                    or top in sys.stdlib_module_names
                ), f"{path} imports {name}"


# --- fmnist-edge webcam ------------------------------------------------------------------------


def webcam(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("fmnist-edge", "webcam", "--model", str(INT8), *args, env=env)


def test_opencv_frames_arrive_as_rgb(tmp_path: Path):
    """A lossless image sequence with distinct R, G, B must come back in RGB order."""
    from edge_runtime.sources import VideoFile

    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 200, 100, 30  # R, G, B
    for i in range(3):
        Image.fromarray(frame).save(tmp_path / f"f{i:03d}.png")
    got = list(VideoFile(tmp_path / "f%03d.png").open())
    assert len(got) == 3
    np.testing.assert_array_equal(got[0], frame)


def test_webcam_on_a_video_file_headless_json(tmp_path: Path):
    shot = np.full((480, 640, 3), 255, np.uint8)
    shot[100:400, 250:400] = (40, 40, 40)
    clip = tmp_path / "clip.avi"
    write_video(clip, [shot] * 30)
    r = webcam("--source", str(clip), "--headless", "--json", "--smooth", "5")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [row["frame"] for row in rows] == list(range(1, 31))
    assert set(rows[0]) == {"frame", "label", "class_id", "score", "not_sure", "fps"}
    assert "30 frames" in r.stderr and "ended by end of stream" in r.stderr

    r = webcam("--source", str(clip), "--headless", "--max-frames", "7", "--roi", "200,50,300,400")
    assert r.returncode == 0, r.stderr
    assert "7 frames" in r.stderr and "--max-frames 7" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "/no/such/clip.avi"], "no such video file or camera"),
        (["--source", "{clip}", "--roi", "5000,5000,10,10"], "outside"),
    ],
)
def test_webcam_errors_are_one_line(tmp_path: Path, args, message):
    clip = tmp_path / "clip.avi"
    write_video(clip, [np.zeros((48, 64, 3), np.uint8)] * 3)
    args = [a.replace("{clip}", str(clip)) for a in args]
    r = webcam("--headless", *args)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_webcam_memory_is_flat_over_thousands_of_frames(tmp_path: Path):
    """Soak: 3,000 frames of 640×480; RSS after frame 500 and at the end must be within 8 MB."""
    rng = np.random.default_rng(0)
    base = np.full((480, 640, 3), 255, np.uint8)
    frames = []
    for i in range(60):
        f = base.copy()
        x = 100 + i * 5
        f[100:380, x : x + 150] = rng.integers(0, 80, 3)
        frames.append(f)
    clip = tmp_path / "soak.avi"
    write_video(clip, frames * 50)
    code = (
        "import resource, sys\n"
        "from edge_runtime import webcam\n"
        "from edge_runtime.options import WebcamOptions\n"
        "from edge_runtime.sources import parse_source\n"
        "samples = []\n"
        "real = webcam.Classifier.probabilities\n"
        "def probe(self, batch, n=[0]):\n"
        "    n[0] += 1\n"
        "    if n[0] in (500, 3000):\n"
        "        samples.append(int(open('/proc/self/statm').read().split()[1]) * 4096)\n"
        "    return real(self, batch)\n"
        "webcam.Classifier.probabilities = probe\n"
        f"source = parse_source({str(clip)!r})\n"
        f"options = WebcamOptions(model={str(INT8)!r}, source=source, headless=True)\n"
        "s = webcam.run_webcam(options)\n"
        "print('FRAMES', s.frames, 'GROWTH', samples[1] - samples[0])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    result = next(line for line in r.stdout.splitlines() if line.startswith("FRAMES"))
    frames_seen, growth = result.split()[1], int(result.split()[3])
    assert frames_seen == "3000"
    assert growth < 8 * 2**20, f"RSS grew by {growth / 2**20:.1f} MB between frame 500 and 3000"


def test_webcam_without_a_usable_gui_falls_back_to_headless(tmp_path: Path):
    """A DISPLAY is set but OpenCV is the headless build: say so once, then carry on printing."""
    clip = tmp_path / "clip.avi"
    write_video(clip, [np.full((48, 64, 3), 255, np.uint8)] * 5)
    r = webcam("--source", str(clip), env={"DISPLAY": ":99"})
    assert r.returncode == 0, r.stderr
    assert "running headless" in r.stderr and "5 frames" in r.stderr
    assert r.stdout.startswith("frame 1: ")


def test_webcam_ctrl_c_ends_cleanly_with_a_summary(tmp_path: Path):
    import signal
    import time

    clip = tmp_path / "long.avi"
    write_video(clip, [np.full((48, 64, 3), 255, np.uint8)] * 20000)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "webcam",
            "--model",
            str(INT8),
            "--source",
            str(clip),
            "--headless",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A background job (CI, `cmd &`) inherits SIGINT as ignored, and Python then installs no
        # KeyboardInterrupt handler; a terminal's Ctrl-C arrives with the default disposition.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout.readline().startswith('{"frame": 1')  # running
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "ended by Ctrl-C" in err and "Traceback" not in err


def test_overlay_draws_label_bars_and_fps():
    from edge_runtime.webcam import FrameResult, annotate

    frame = np.zeros((240, 320, 3), np.uint8)
    probs = np.array([0.05, 0.0, 0.1, 0.0, 0.0, 0.0, 0.7, 0.0, 0.15, 0.0], np.float32)
    seen = np.zeros((28, 28), np.uint8)
    result = FrameResult(1, Classifier.from_file(INT8).prediction(probs, 3), 123.0, seen)
    canvas = annotate(frame, result, roi=(10, 10, 50, 50))
    assert canvas.shape == frame.shape and canvas.any()
    assert frame.max() == 0, "the input frame is not drawn on"


def test_malformed_roi_is_a_usage_error():
    r = webcam("--source", "clip.avi", "--roi", "1,2,3")
    assert r.returncode == 2 and "expected x,y,w,h" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("source", ["/dev/video99", "7"])
def test_a_camera_that_is_not_there_is_one_line(source: str):
    r = webcam("--source", source, "--headless")
    assert r.returncode == 1
    assert r.stderr == f"error: {source}: cannot open (not a camera, or an unreadable video)\n"


def test_picamera_without_picamera2_says_how_to_install():
    r = webcam("--source", "picamera", "--headless")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "python3-picamera2" in r.stderr and "--system-site-packages" in r.stderr


def test_edge_extra_never_pulls_tensorflow():
    """`pip install '.[edge]'` (and webcam) must not bring TensorFlow to the Pi."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    edge = (
        project["dependencies"]
        + project["optional-dependencies"]["edge"]
        + project["optional-dependencies"]["webcam"]
    )
    names = {
        d.split(";")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower() for d in edge
    }
    assert names.isdisjoint({"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "matplotlib"}), (
        names
    )
    assert {"numpy", "pillow", "click", "ai-edge-litert", "tflite-runtime"} <= names
