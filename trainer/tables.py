"""Tables as data: a :class:`Table` is a title, columns and rows of text, built by one small
function each and rendered by one renderer per format (:meth:`Table.markdown` here for
``benchmarks.md``; :func:`trainer.report.table` for the report's HTML).

The tables here are the ones drawn from the sidecars, which the report shows and the benchmark
shares (the cross-runtime table); the benchmark's own are in :mod:`benchmarks.tables`. Cells may
use the Markdown the report understands: `code` and **bold**.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edge_runtime import CLASS_NAMES
from edge_runtime.compare import RuntimePair
from edge_runtime.sidecar import Sidecar
from edge_runtime.vocab import RUNTIMES


@dataclass(frozen=True)
class Table:
    """A titled table whose every cell is already text."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, title: str, columns: Iterable[str], rows: Iterable[Iterable[object]]) -> Table:
        """A table from any values, each cell turned into text with ``str``."""
        return cls(title, tuple(columns), tuple(tuple(str(c) for c in row) for row in rows))

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        return cls.of(data["title"], data["columns"], data["rows"])

    def markdown(self) -> list[str]:
        """The table as Markdown lines, under a ``##`` heading."""
        return [
            f"## {self.title}",
            "",
            "| " + " | ".join(self.columns) + " |",
            "|" + "---|" * len(self.columns),
            *("| " + " | ".join(row) + " |" for row in self.rows),
        ]


def steps(value: float | None) -> str:
    """A difference in quantization steps, or a dash for a float output."""
    return "–" if value is None else f"{value:.0f}"


def cross_runtime_table(title: str, pairs: Iterable[tuple[str, RuntimePair]]) -> Table:
    """The same model on two runtimes (or architectures): ``(model, pair)`` per row."""
    return Table.of(
        title,
        (
            "variant",
            "runtimes",
            "argmax agreement",
            "max difference",
            "in output steps",
            "within one step",
            "bit-identical images",
        ),
        (
            (
                variant,
                " vs ".join(p.runtimes),
                f"{p.argmax_agreement:.4f}",
                f"{p.max_abs_diff:.4f}",
                steps(p.max_diff_steps),
                "–" if p.within_one_step is None else f"{p.within_one_step:.4f}",
                f"{p.bit_identical:.4f}",
            )
            for variant, p in pairs
        ),
    )


def models_table(sidecars: list[Sidecar]) -> Table:
    """Every converted model: size, accuracy against float, tensors, and where it loads."""
    return Table.of(
        "Every converted model (the test set, on every runtime)",
        (
            "mode",
            "bytes",
            "accuracy",
            "drop (pp)",
            "agreement with float",
            "input",
            "output",
            *(f"loads on {n}" for n in RUNTIMES),
        ),
        (
            (
                s.quantization,
                f"{s.size_bytes:,}",
                f"{s.test_accuracy:.4f}",
                f"{s.accuracy_drop_pp:+.2f}",
                f"{s.agreement_with_float:.4f}",
                s.input.dtype,
                s.output_is,
                *("yes" if s.runtimes.get(n) else "no" for n in RUNTIMES),
            )
            for s in sidecars
        ),
    )


def route_table(route: dict[str, Any]) -> Table:
    """The int8 route's fine-tuning seeds, as judged on held-out training images."""
    return Table.of(
        f"The fine-tuning seeds, on {route['holdout_images']:,} held-out training images",
        (
            "seed",
            "logit step",
            "drop (pp)",
            "agreement",
            "answers differing",
            "steps apart",
            "kept",
        ),
        (
            (
                c["seed"],
                f"{c['step']:.4f}",
                f"{c['drop_pp']:+.2f}",
                f"{c['agreement']:.4f}",
                c["flips"],
                steps(c["cross_steps"]),
                "yes" if c.get("chosen") else "",
            )
            for c in route["candidates"]
        ),
    )


def layer_error_table(mode: str, layers: list[dict[str, Any]]) -> Table:
    """Where one int8 model's error sits, layer by layer (``int8_debug.json``)."""
    return Table.of(
        mode,
        ("layer", "op", "RMSE (steps)", "max (steps)"),
        ((r["layer"], r["op"], f"{r['rmse_steps']:.3f}", f"{r['max_steps']:.1f}") for r in layers),
    )


def microcontroller_table(sidecars: list[Sidecar]) -> Table:
    """Flash and RAM of the models TensorFlow Lite Micro runs, as its interpreter measured."""
    return Table.of(
        "Microcontroller footprint (TensorFlow Lite Micro's interpreter, measured)",
        ("mode", "flash: model bytes", "RAM: tensor arena bytes"),
        (
            (
                s.quantization,
                f"{s.microcontroller['flash_bytes']:,}",
                f"{s.microcontroller['arena_bytes']:,}",
            )
            for s in sidecars
            if s.microcontroller
        ),
    )


def per_class_delta_table(sidecars: list[Sidecar]) -> Table:
    """Per class, each model's accuracy change against the float model."""
    return Table.of(
        "Per-class accuracy change vs float (pp)",
        ("mode", *CLASS_NAMES),
        (
            (s.quantization, *(f"{s.per_class_delta_pp[n]:+.1f}" for n in CLASS_NAMES))
            for s in sidecars
        ),
    )
