"""Every figure of the project, saved one way: the Agg backend and an atomic write.

The training plots (:mod:`trainer.plots`), the int8 error report (:mod:`converter.layer_error`)
and the benchmark's charts all draw with :func:`pyplot` and save with :func:`save_figure`.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.atomic import atomic_path


def pyplot():  # noqa: ANN201 - the matplotlib.pyplot module, imported lazily
    """``matplotlib.pyplot`` on the Agg backend: no display on a CI box or a headless Pi."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:  # noqa: ANN001 - a matplotlib Figure
    """Write ``fig`` to ``path`` (PNG) atomically, then close it. Every plot is saved here.

    Returns:
        ``path``.
    """
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    pyplot().close(fig)
    return path
