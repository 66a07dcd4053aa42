"""How far two runtimes' answers are apart, for the same model and the same images.

One definition, used by the converter (its targets), the benchmark (its cross-runtime table) and
``make test-arm64`` (aarch64 against x86). Steps apart are measured on the raw outputs of one
invoke; whether two runtimes give the same *answer* is measured on the answers a user gets,
which for a model whose sidecar asks for ``mirror_average`` is the mean of two invokes.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np


@dataclass(frozen=True, kw_only=True)
class Agreement:
    """How close two sets of dequantized outputs (N, classes) of one model are.

    Attributes:
        argmax_agreement: Share of images with the same answer (0–1): the same best class in
            the answers, when they were given, else in the outputs.
        max_abs_diff: Largest difference of any output value.
        max_diff_steps: The same in output quantization steps (None for a float output).
        within_one_step: Share of output values within one step (None for a float output).
        bit_identical: Share of images whose outputs are all equal.
    """

    argmax_agreement: float
    max_abs_diff: float
    max_diff_steps: float | None
    within_one_step: float | None
    bit_identical: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Agreement:
        # The step fields are None for a float output, and older records lack within_one_step.
        return cls(**{f.name: data.get(f.name) for f in fields(Agreement)})


@dataclass(frozen=True, kw_only=True)
class RuntimePair(Agreement):
    """:class:`Agreement` between two named runtimes (``"tflite-runtime (aarch64)"``, say)."""

    runtimes: tuple[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"runtimes": list(self.runtimes), **Agreement.to_json(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuntimePair:
        stats = Agreement.from_json(data)
        return cls(runtimes=(data["runtimes"][0], data["runtimes"][1]), **asdict(stats))


def agreement(
    a: np.ndarray,
    b: np.ndarray,
    *,
    scale: float,
    answers: tuple[np.ndarray, np.ndarray] | None = None,
) -> Agreement:
    """Compare two runtimes' dequantized outputs (N, classes) of one model.

    Args:
        a, b: The outputs, as :meth:`Classifier.outputs` returns them (one invoke per image).
        scale: The output tensor's quantization scale (0 for a float output).
        answers: The two runtimes' answers (N, classes), as :meth:`Classifier.probabilities`
            returns them, when they are more than one invoke (a mirror average); None: the
            answers are the outputs.
    """
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    steps = np.round(diff / scale) if scale else None
    first, second = answers if answers is not None else (a, b)
    return Agreement(
        argmax_agreement=float(np.mean(np.argmax(first, 1) == np.argmax(second, 1))),
        max_abs_diff=float(diff.max()),
        max_diff_steps=float(steps.max()) if steps is not None else None,
        within_one_step=float(np.mean(steps <= 1)) if steps is not None else None,
        bit_identical=float(np.mean((diff == 0).all(axis=1))),
    )


def pairwise(
    outputs: dict[str, np.ndarray],
    *,
    scale: float,
    answers: dict[str, np.ndarray] | None = None,
) -> list[RuntimePair]:
    """:func:`agreement` for every pair of runtimes.

    Args:
        outputs: Runtime → its dequantized outputs for one model on the same images.
        scale: That model's output scale (0 for a float output).
        answers: Runtime → its answers on the same images (None: the outputs).
    """
    return [
        RuntimePair(
            runtimes=(a, b),
            **asdict(
                agreement(
                    outputs[a],
                    outputs[b],
                    scale=scale,
                    answers=(answers[a], answers[b]) if answers is not None else None,
                )
            ),
        )
        for a, b in itertools.combinations(outputs, 2)
    ]
