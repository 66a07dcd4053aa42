"""Run Fashion-MNIST TFLite models on a Raspberry Pi without TensorFlow.

This package is the bottom layer of the project: ``converter`` and ``trainer`` may import it, it
imports neither of them, nor TensorFlow. Its dependencies are numpy, Pillow, click and OpenCV
(the preprocessing finds the garment with it); the interpreter (ai-edge-litert or
tflite-runtime) is imported when a model is loaded, the serve stack only by ``serve``.
"""

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST labels, indexed by class id (the order of the official dataset)."""

IMAGE_SIZE = 28
"""Height and width of the model input, in pixels."""

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
"""One model input image: height, width, channels (greyscale)."""
