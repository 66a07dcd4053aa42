"""How far apart two runtimes' answers are, for the same model and the same images.

One definition, used by the converter (its targets), the benchmark (its cross-runtime table) and
``make test-arm64`` (aarch64 against x86).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def agreement(a: np.ndarray, b: np.ndarray, *, scale: float) -> dict[str, float | None]:
    """Compare two runtimes' dequantized outputs (N, classes) of one model.

    Args:
        a, b: The outputs, as :meth:`Classifier.outputs` returns them.
        scale: The output tensor's quantization scale (0 for a float output).

    Returns:
        ``argmax_agreement`` (share of images with the same answer), ``max_abs_diff``,
        ``max_diff_steps`` and ``within_one_step`` (in output quantization steps; None for a float
        output) and ``bit_identical`` (share of images whose outputs are all equal).
    """
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    steps = np.round(diff / scale) if scale else None
    return {
        "argmax_agreement": float(np.mean(np.argmax(a, 1) == np.argmax(b, 1))),
        "max_abs_diff": float(diff.max()),
        "max_diff_steps": float(steps.max()) if steps is not None else None,
        "within_one_step": float(np.mean(steps <= 1)) if steps is not None else None,
        "bit_identical": float(np.mean((diff == 0).all(axis=1))),
    }


def pairwise(outputs: dict[str, np.ndarray], *, scale: float) -> list[dict[str, Any]]:
    """:func:`agreement` for every pair of runtimes: ``[{"runtimes": [a, b], ...}, ...]``.

    Args:
        outputs: Runtime → its dequantized outputs for one model on the same images.
        scale: That model's output scale (0 for a float output).
    """
    return [
        {"runtimes": [a, b], **agreement(outputs[a], outputs[b], scale=scale)}
        for a, b in itertools.combinations(outputs, 2)
    ]
