"""Where a training run lives: the device it runs on, and its run directory's checkpoints and log.

A run directory holds ``config.json`` (:mod:`labkit.detection.config`), ``provenance.json`` (the commit, dirty
flag, labkit version and command that made it, and each resumption: :mod:`labkit.provenance`), ``log.jsonl`` (one JSON record per logged
iteration), ``checkpoints/iter_*.pt`` (model, optimizer, iteration, RNG states and the config) and, after
evaluation, ``metrics.json``. Every file is written atomically (:mod:`labkit._io`). Both the training loop
(:mod:`labkit.detection.engine`) and evaluation (:mod:`labkit.detection.evaluate`) stand on this module.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from labkit._io import write_atomic, write_json
from labkit.provenance import describe

__all__ = [
    "DEVICES",
    "DeviceUnavailableError",
    "resolve_device",
    "checkpoint_dir",
    "latest_checkpoint",
    "save_checkpoint",
    "read_log",
    "append_log",
    "rewrite_log",
    "PROVENANCE_FILE",
    "record_provenance",
    "read_provenance",
]

PROVENANCE_FILE = "provenance.json"

DEVICES = ("auto", "cpu", "cuda")

Record = dict[str, Any]


class DeviceUnavailableError(RuntimeError):
    """The requested device does not exist on this machine."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without CUDA is an error. Under torchrun the CUDA
    device is ``cuda:LOCAL_RANK``."""
    if isinstance(device, torch.device):
        device = device.type
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got device={device!r}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceUnavailableError("device='cuda' was asked for, but this machine has no usable CUDA device "
                                     "(torch.cuda.is_available() is False); use --device cpu or auto")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


# ---------------------------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------------------------
def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The highest-iteration ``checkpoints/iter_*.pt`` of ``run_dir``, or None."""
    found = sorted(checkpoint_dir(run_dir).glob("iter_*.pt"))
    return found[-1] if found else None


def save_checkpoint(run_dir: str | Path, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` to ``checkpoints/iter_{iteration}.pt`` atomically; keep the newest ``keep`` checkpoints."""
    folder = checkpoint_dir(run_dir)
    path = write_atomic(folder / f"iter_{state['iteration']:08d}.pt", lambda f: torch.save(state, f))
    for old in sorted(folder.glob("iter_*.pt"))[:-keep]:
        old.unlink()
    return path


# ---------------------------------------------------------------------------------------------------------------
# the log: one JSON record per line
# ---------------------------------------------------------------------------------------------------------------
def read_log(path: str | Path, upto: int | None = None) -> list[Record]:
    """The records of ``log.jsonl`` (up to iteration ``upto``); [] when there is no log yet."""
    path = Path(path)
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if upto is None or r["iteration"] <= upto]


def append_log(path: str | Path, record: Record) -> None:
    """Add one record (one line: a crash can cut at most the line being written, which :func:`rewrite_log` on
    resume drops with everything after the checkpoint)."""
    with Path(path).open("a") as f:
        f.write(json.dumps(record) + "\n")


def rewrite_log(path: str | Path, records: list[Record]) -> None:
    """Replace the log by ``records``, atomically (on resume: the records up to the checkpoint)."""
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


# ---------------------------------------------------------------------------------------------------------------
# provenance: which code made the run
# ---------------------------------------------------------------------------------------------------------------
def record_provenance(run_dir: str | Path, device: str, resumed: bool) -> dict[str, Any]:
    """Write ``provenance.json``: ``{"created": <labkit.provenance.describe>, "resumed": [<describe>, …]}``. A new
    run starts the record; a resumed one appends to it (a run finished across two commits says so)."""
    path = Path(run_dir) / PROVENANCE_FILE
    now = describe(device)
    record = read_provenance(run_dir) if resumed else None
    record = {"created": now, "resumed": []} if record is None else {**record,
                                                                     "resumed": [*record.get("resumed", []), now]}
    write_json(path, record)
    return record


def read_provenance(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``provenance.json``, or None for a run made before runs recorded it (or an unreadable file)."""
    try:
        return json.loads((Path(run_dir) / PROVENANCE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
