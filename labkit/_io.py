"""Files that are never half-written: every file the lab writes goes through :func:`write_atomic`.

The bytes go to a temporary file in the destination's folder, which then replaces the destination with
``os.replace`` (atomic on POSIX and Windows within one file system): a reader sees the old file or the new one,
never a torn one, and a crash leaves at most a hidden ``.<name>.*.tmp`` behind.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Union

__all__ = ["write_atomic", "write_json", "json_safe"]

Content = Union[bytes, str, Callable[[IO[bytes]], Any]]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, content: Content) -> Path:
    """Write ``content`` to ``path`` atomically and return the path.

    ``content``: bytes, text (written as UTF-8), or a function that writes into the open binary file (for
    ``torch.save``, ``Figure.savefig`` …). Parent folders are created. The file gets the usual permissions
    (0o666 less the umask), not ``mkstemp``'s private 0o600: the lab's files are meant to be shared.
    """
    if not (isinstance(content, (bytes, str)) or callable(content)):
        raise TypeError(f"content must be bytes, str or a function writing to a binary file, "
                        f"got {type(content).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, str):
                f.write(content.encode("utf-8"))
            elif isinstance(content, bytes):
                f.write(content)
            else:
                content(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_safe(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, ±inf) replaced by None: JSON has no NaN, and an undefined value
    (an interval from one seed, a metric with nothing to measure) is written as null."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, Mapping):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    return data


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """``data`` as indented JSON (UTF-8, non-ASCII kept, trailing newline; non-finite floats as null, see
    :func:`json_safe`), written atomically."""
    text = json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_atomic(path, text)
