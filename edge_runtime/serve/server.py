"""Run the app on uvicorn until SIGINT/SIGTERM, and write a systemd unit that does the same.

Shutdown, in order: the signal ends every MJPEG stream at once (they would otherwise hold the
graceful shutdown open forever), uvicorn stops accepting and finishes the requests in flight,
the lifespan stops the camera thread and releases the camera, and the process exits 0.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType

from edge_runtime.cli_support import command_line
from edge_runtime.options import ServeOptions
from edge_runtime.serve.app import create_app

GRACE_S = 5
"""Seconds the requests in flight get to finish after a stop signal."""
SERVICE_ENV = "/etc/default/fmnist-edge"
"""Where the unit reads ``FMNIST_TOKEN`` from (a token never goes in a unit file or a command
line, where other users can read it)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one), made before uvicorn starts
    so that the URL printed is the real one and nothing connects before it exists.

    Raises:
        OSError: The address is in use or not ours, as one line.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The URL a browser on this machine opens for ``sock``."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@contextlib.contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """While uvicorn runs, make SIGINT/SIGTERM handlers of ours the ones it restores.

    uvicorn re-raises the signal that stopped it once it has shut down, into the handlers it
    found; with the defaults that would end the process by the signal (exit 130 or 143) after
    a clean shutdown. Ours do nothing, so a stop signal ends in exit 0.
    """
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda sig, frame: None) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_server(options: ServeOptions) -> None:
    """Serve until SIGINT or SIGTERM. Prints the URL to open first.

    Raises:
        ModelError, RuntimeMissingError, SourceError, OSError: One line each, before listening.
    """
    import uvicorn

    if options.source is not None:
        options.source.check()
    app = create_app(options)
    sock = bind(options.host, options.port)
    service = app.state.service

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            service.stop_streams()  # streams never end on their own
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,  # no proxy in front by default: nothing to rewrite per request
        timeout_graceful_shutdown=GRACE_S,
    )
    url = url_of(sock)
    print(f"fmnist-edge serving {options.model} on {url}", flush=True)
    if not _is_loopback(options.host):
        host = socket.gethostname()
        print(f"  from other machines: http://{host}:{sock.getsockname()[1]}/", flush=True)
        if options.token is None:
            print(
                "  warning: no --token: anyone who can reach this port can use the API",
                file=sys.stderr,
                flush=True,
            )
    print("  Ctrl-C (or SIGTERM) stops it; SIGHUP swaps in the model file again.", flush=True)
    previous = signal.signal(signal.SIGHUP, lambda sig, frame: service.reload_soon("SIGHUP"))
    try:
        with _signals_end_quietly():
            Server(config).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGHUP, previous)
    print("fmnist-edge stopped", file=sys.stderr, flush=True)


# --- systemd ------------------------------------------------------------------------------------


def _systemd_word(arg: str) -> str:
    """One ExecStart argument, quoted for systemd (``%`` and ``$`` are its specifiers)."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if not arg or any(c in arg for c in " \t\"'\\;"):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def _service_user(model: Path) -> tuple[str, bool]:
    """Who the service runs as: never root.

    Returns:
        ``(user, exists)``: the sudo user, else the current user, else the model file's owner;
        when all of those are root, a dedicated ``fmnist`` user (which may need creating).
    """
    candidates: list[Callable[[], str | None]] = [
        lambda: os.environ.get("SUDO_USER"),
        lambda: pwd.getpwuid(os.geteuid()).pw_name,
        lambda: pwd.getpwuid(model.stat().st_uid).pw_name,
    ]
    for candidate in candidates:
        with contextlib.suppress(KeyError, OSError):
            name = candidate()
            if name and name != "root":
                return name, True
    return "fmnist", False


def service_options(options: ServeOptions) -> ServeOptions:
    """``options`` as a service runs them: every path absolute, and no token (it is read from
    :data:`SERVICE_ENV`)."""
    source = None if options.source is None else options.source.absolute()
    capture = None if options.capture is None else Path(options.capture).resolve()
    model = Path(options.model).resolve()
    return replace(options, model=model, source=source, capture=capture, token=None)


def exec_start(options: ServeOptions) -> list[str]:
    """The command line of the service: this venv's ``fmnist-edge serve`` with ``options``,
    every flag derived from the ``serve`` command's own declaration."""
    from edge_runtime.cli import serve

    script = Path(sys.executable).parent / "fmnist-edge"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "edge_runtime.cli"]
    return [*command, "serve", *command_line(serve, service_options(options), leave_out=("token",))]


def systemd_unit(options: ServeOptions) -> str:
    """A systemd unit that runs ``fmnist-edge serve`` with ``options`` from this environment.

    Paths are absolute (this venv's ``fmnist-edge``, the model, a video source); the token, if
    any, is read from :data:`SERVICE_ENV`, never written into the unit.
    """
    command = exec_start(options)
    model = Path(options.model).resolve()
    capture = service_options(options).capture
    user, exists = _service_user(model)
    low_port = 0 < options.port < 1024
    lines = [
        "# fmnist-edge serve as a systemd service. Install and start it:",
        "#   fmnist-edge serve ... --systemd-unit | sudo tee /etc/systemd/system/fmnist-edge.service",
        "#   sudo systemctl daemon-reload && sudo systemctl enable --now fmnist-edge",
        f"# Token: put FMNIST_TOKEN=... in {SERVICE_ENV} (sudo chmod 600 it), then restart.",
    ]
    if not exists:
        lines.append(f"# Create the user first: sudo useradd --system --groups video {user}")
    lines += [
        "",
        "[Unit]",
        "Description=fmnist-edge: Fashion-MNIST classifier over HTTP",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"User={user}",
        "SupplementaryGroups=video",
        f"EnvironmentFile=-{SERVICE_ENV}",
        "ExecStart=" + " ".join(_systemd_word(a) for a in command),
        # `systemctl reload fmnist-edge` swaps the model in without a restart.
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=5",
        "TimeoutStopSec=15",
        "# Hardening: the server reads its model and the camera, and writes only its captures.",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        *([f"ReadWritePaths=-{_systemd_word(str(capture))}"] if capture else []),
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "SystemCallArchitectures=native",
        # Only a port below 1024 needs a capability, and then only that one.
        "CapabilityBoundingSet=" + ("CAP_NET_BIND_SERVICE" if low_port else ""),
        *(["AmbientCapabilities=CAP_NET_BIND_SERVICE"] if low_port else []),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"
