"""``fmnist-edge serve``: the model as a web service on the Pi (the ``serve`` extra).

- :mod:`.app`: the Starlette app (page, JSON API, Open Inference Protocol v2, metrics).
- :mod:`.camera`: the camera thread and the hub that hands frames to the streams.
- :mod:`.v2`: the v2 protocol's requests and answers, as pure functions.
- :mod:`.security`: the token gate and the upload limit.
- :mod:`.metrics`: the Prometheus instruments.
- :mod:`.server`: uvicorn, signals, and the systemd unit.
- ``static/``: the page (HTML, CSS, JS): served as files, never rendered.
"""

from __future__ import annotations

from edge_runtime.options import ServeOptions
from edge_runtime.serve.app import create_app
from edge_runtime.serve.server import SERVICE_ENV, run_server, systemd_unit

__all__ = ["SERVICE_ENV", "ServeOptions", "create_app", "run_server", "systemd_unit"]
