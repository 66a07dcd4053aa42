"""TensorFlow Lite Micro as a third runtime: the microcontroller interpreter, run on this machine.

TFLM is what an int8 model runs on inside a microcontroller (reference kernels, a fixed tensor
arena, no dynamic memory). Its Python package (``tflite-micro``, x86-64 wheels only) runs the
same C++ interpreter here, so the project can check that a model gives the same answer on a
microcontroller as on the Pi, and measure the arena it needs.

:class:`Interpreter` offers the calls :class:`edge_runtime.classifier.Classifier` makes of a
``tf.lite.Interpreter``, so the Classifier, the worker and the CLI take ``tflite-micro`` like any
other runtime. Importing this module fails (ImportError) when TFLM is not installed, which is how
the Classifier tells that the runtime is missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
from tflite_micro.python.tflite_micro import runtime as _tflm

ARENA_BYTES = 512 * 1024
"""The arena given to the interpreter: ample for this network (it needs ~15 KB); what it really
uses is measured by :meth:`Interpreter.arena_bytes`."""


@contextlib.contextmanager
def _captured_fd2() -> Iterator[list[str]]:
    """Capture what C++ code writes to file descriptor 2 (TFLM reports its arena there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += sink.read().decode(errors="replace").splitlines()


class Interpreter:
    """TFLM's interpreter behind the subset of the ``tf.lite.Interpreter`` API the Classifier uses.

    TFLM runs one image at a time (its tensors have a fixed batch of 1), so a batch is run image
    by image; ``num_threads`` is accepted and ignored (a microcontroller has one core).
    """

    def __init__(self, model_content: bytes, num_threads: int = 1) -> None:
        del num_threads
        self._tflm = _tflm.Interpreter.from_bytes(model_content, arena_size=ARENA_BYTES)
        self._details = [self._convert(self._tflm.get_input_details(0), 0)]
        self._out_details = [self._convert(self._tflm.get_output_details(0), 1)]
        self._input: np.ndarray | None = None
        self._output: np.ndarray | None = None

    @staticmethod
    def _convert(details: dict[str, Any], index: int) -> dict[str, Any]:
        quant = details["quantization_parameters"]
        scales, zero_points = quant["scales"], quant["zero_points"]
        return {
            "index": index,
            "shape": np.asarray(details["shape"]),
            "dtype": np.dtype(details["dtype"]),
            "quantization": (
                float(scales[0]) if len(scales) else 0.0,
                int(zero_points[0]) if len(zero_points) else 0,
            ),
        }

    def allocate_tensors(self) -> None:
        """TFLM allocates its arena when it is created."""

    def resize_tensor_input(self, index: int, shape: list[int]) -> None:
        """Batches are run image by image; nothing to resize."""

    def get_input_details(self) -> list[dict[str, Any]]:
        return self._details

    def get_output_details(self) -> list[dict[str, Any]]:
        return self._out_details

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        self._input = np.asarray(value)

    def invoke(self) -> None:
        if self._input is None:
            raise RuntimeError("set_tensor() first")
        outputs = []
        for image in self._input:
            self._tflm.set_input(image[np.newaxis], 0)
            self._tflm.invoke()
            outputs.append(np.array(self._tflm.get_output(0)))
        self._output = np.concatenate(outputs)

    def get_tensor(self, index: int) -> np.ndarray:
        if self._output is None:
            raise RuntimeError("invoke() first")
        return self._output

    def arena_bytes(self) -> int:
        """The tensor arena this model really uses, as TFLM's recording allocator reports it.

        Call after an invoke. This is the figure to give a microcontroller (plus the model's
        flash bytes), measured, not estimated.
        """
        with _captured_fd2() as lines:
            self._tflm.print_allocations()
        for line in lines:
            found = re.search(r"Arena allocation total (\d+) bytes", line)
            if found:
                return int(found.group(1))
        raise RuntimeError(f"TFLM reported no arena total: {lines[:5]}")
