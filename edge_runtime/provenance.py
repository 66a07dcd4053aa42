"""Where a number came from: package versions and the machine, collected in one place.

Read from package metadata and ``/proc``, never by importing the packages: asking for
TensorFlow's version must not cost the 2–5 s of ``import tensorflow``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

PACKAGES = (
    "numpy",
    "pillow",
    "tensorflow",
    "keras",
    "ai-edge-litert",
    "tflite-runtime",
    "tflite-micro",
    "tf-keras",
    "tensorflow-model-optimization",
    "opencv-python-headless",
)
"""The distributions whose versions decide the numbers this project reports."""


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution in ``names`` (None when it is not installed),
    plus ``python``."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpuinfo() -> dict[str, str]:
    """Fields of ``/proc/cpuinfo``, first occurrence of each (empty where there is none).

    On a Pi the board's ``Model`` line comes after the per-core blocks, so all lines are read.
    """
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def int8_dot_product(flags: set[str]) -> str | None:
    """The CPU's int8 dot-product instructions among its ``flags``, or None.

    These (x86 VNNI, ARM ``asimddp``/``i8mm``) are what make int8 kernels faster than float
    ones; without them int8 mainly saves memory.
    """
    found = sorted(flags & {"avx512_vnni", "avx_vnni", "asimddp", "i8mm"})
    return ", ".join(found) or None


def machine() -> dict[str, object]:
    """CPU model, cores, architecture, Python and the int8 dot-product support of this machine."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("features") or "").split())
    return {
        "cpu": info.get("model name") or info.get("model") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "int8_dot_product": int8_dot_product(flags),
    }
