"""Start the lab for a person at this machine: JupyterLab (``make lab``) or the Voila dashboard (``make dashboard``).

Both servers listen on 127.0.0.1 only and ask for a random token (printed in the URL); nothing here offers an
open address or an empty token. ``lab_argv`` / ``dashboard_argv`` build the exact command lines and
``lab_environment`` the lab's environment, so the browser test starts the servers the same way the Makefile does.

The lab's default settings (``static/jupyter_config/labconfig/default_setting_overrides.json``, found through
``JUPYTER_CONFIG_PATH``) turn off JupyterLab's news and update checks: no pop-up asks to fetch news from a network
the lab does not need. They also render every cell at once (``windowingMode: none``): with lazy windowing a cell that
comes into view typesets its math and grows, and a slider further down moves from under the pointer. A person's own
settings still win over these defaults.

``python -m labkit serve lab`` · ``python -m labkit serve dashboard``
"""
from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from labkit.lab import NOTEBOOK_DIR, STATIC_DIR

__all__ = ["HOST", "LAB_CONFIG_DIR", "NOTEBOOK_DIR", "START_NOTEBOOK", "DASHBOARD_NOTEBOOK", "free_port", "new_token",
           "lab_argv", "lab_environment", "dashboard_argv", "url"]

HOST = "127.0.0.1"
START_NOTEBOOK = "00_start_here.ipynb"
DASHBOARD_NOTEBOOK = "dashboard.ipynb"
DEFAULT_LAB_PORT = 8888
DEFAULT_DASHBOARD_PORT = 8866
#: a Jupyter config folder holding the lab's default settings (labconfig/default_setting_overrides.json)
LAB_CONFIG_DIR = STATIC_DIR / "jupyter_config"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def new_token() -> str:
    """A random URL-safe token (192 bits)."""
    return secrets.token_hex(24)


def _check_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer in [1, 65535], got port={port!r}")
    return port


def _check_token(token: str) -> str:
    if not isinstance(token, str) or len(token) < 16 or not token.isalnum():
        raise ValueError("token must be at least 16 letters or digits (an empty token would open the lab to anyone)")
    return token


def lab_argv(port: int, token: str, *, notebook_dir: str | os.PathLike = NOTEBOOK_DIR,
             open_notebook: str | None = START_NOTEBOOK, open_browser: bool = True,
             settings_dir: str | os.PathLike | None = None) -> list[str]:
    """The JupyterLab command line: bound to 127.0.0.1:``port``, ``token`` required, rooted at ``notebook_dir``,
    opening ``open_notebook`` (relative to it). ``settings_dir`` (tests) isolates user settings and workspaces."""
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.ip={HOST}", f"--ServerApp.port={_check_port(port)}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={_check_token(token)}",
            f"--ServerApp.root_dir={Path(notebook_dir).resolve()}", f"--ServerApp.open_browser={open_browser}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")  # containers (CI, Binder builds) often run as root
    if settings_dir is not None:
        argv += [f"--LabApp.user_settings_dir={settings_dir}", f"--LabApp.workspaces_dir={settings_dir}"]
    if open_notebook:
        argv.append(str(Path(notebook_dir).resolve() / open_notebook))  # JupyterLab opens it in the first tab
    return argv


def lab_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) whose ``JUPYTER_CONFIG_PATH`` starts with
    :data:`LAB_CONFIG_DIR`, so JupyterLab reads the lab's default settings (news and update checks off)."""
    env = dict(os.environ if environ is None else environ)
    rest = [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and Path(p) != LAB_CONFIG_DIR]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(LAB_CONFIG_DIR), *rest])
    return env


def dashboard_argv(port: int, token: str, *, notebook: str | os.PathLike = NOTEBOOK_DIR / DASHBOARD_NOTEBOOK,
                   open_browser: bool = True) -> list[str]:
    """The Voila command line serving ``notebook`` as an app on 127.0.0.1:``port`` (``token`` required), through
    :mod:`labkit.lab.voila_app` (Voila with a template that fetches nothing from a CDN)."""
    return [sys.executable, "-m", "labkit.lab.voila_app", str(Path(notebook).resolve()), f"--Voila.ip={HOST}",
            f"--Voila.port={_check_port(port)}", "--Voila.port_retries=0", f"--Voila.token={_check_token(token)}",
            f"--Voila.open_browser={open_browser}", "--VoilaConfiguration.show_tracebacks=True"]


def url(port: int, token: str, path: str = "") -> str:
    """``http://127.0.0.1:port/path?token=...``."""
    return f"http://{HOST}:{port}/{path.lstrip('/')}?token={token}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="app", required=True, metavar="APP")
    lab = sub.add_parser("lab", help="JupyterLab on 127.0.0.1, opening notebooks/00_start_here.ipynb")
    lab.add_argument("--port", type=int, default=DEFAULT_LAB_PORT, help=f"port (default {DEFAULT_LAB_PORT})")
    lab.add_argument("--no-browser", action="store_true", help="print the URL only")
    dash = sub.add_parser("dashboard", help="the figures and the calculator as a Voila app on 127.0.0.1")
    dash.add_argument("--port", type=int, default=DEFAULT_DASHBOARD_PORT, help=f"port (default {DEFAULT_DASHBOARD_PORT})")
    dash.add_argument("--no-browser", action="store_true", help="print the URL only")


def run(args: argparse.Namespace) -> int:
    """Start JupyterLab or the Voila dashboard on 127.0.0.1 with a fresh token; the URL is printed."""
    token = new_token()
    if args.app == "lab":
        argv = lab_argv(args.port, token, open_browser=not args.no_browser)
        print(f"The lab: {url(args.port, token, 'lab/tree/' + START_NOTEBOOK)}", flush=True)
    else:
        argv = dashboard_argv(args.port, token, open_browser=not args.no_browser)
        print(f"The dashboard: {url(args.port, token)}", flush=True)
    try:
        return subprocess.call(argv, env=lab_environment() if args.app == "lab" else None)
    except KeyboardInterrupt:
        return 0
