"""Where a result came from: the code's commit (and whether the tree had changes), the versions, the machine and the
command. Every run directory keeps one record (``provenance.json``, written by :mod:`labkit.detection.engine`), and
every experiment's ``results.json`` lists each row's own commit, so a table mixing runs of several commits says so.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from typing import Any

import torch
import torchvision

import labkit

__all__ = ["git_state", "describe", "same_code"]

UNKNOWN_COMMIT = "unknown (not a git checkout)"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=labkit.PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """``{"git_commit": <sha or UNKNOWN_COMMIT>, "git_dirty": bool | None}``: tracked files changed since the
    commit make the tree dirty (untracked files do not: run directories and data live in the tree)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": _git("rev-parse", "HEAD") or UNKNOWN_COMMIT,
            "git_dirty": None if status is None else bool(status)}


def describe(device: str) -> dict[str, Any]:
    """The full record: git state, labkit version, date, device, thread count, Python/torch/torchvision versions,
    platform and the command line that made it."""
    return {
        **git_state(),
        "labkit": labkit.__version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else
        (platform.processor() or platform.machine()),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
    }


def same_code(record: dict[str, Any] | None, now: dict[str, Any] | None = None) -> bool:
    """True when ``record`` (a run's provenance) was made by the commit checked out now. A record without a known
    commit is never the same code."""
    now = git_state() if now is None else now
    commit = (record or {}).get("git_commit")
    return commit not in (None, UNKNOWN_COMMIT) and commit == now["git_commit"]
