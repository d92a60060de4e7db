"""Input handling shared by the math modules: validate the paper's parameters, and run one torch code path
for Python floats, NumPy arrays and torch tensors alike.

Every public formula in :mod:`labkit.losses` and :mod:`labkit.densities` is written once, in torch; this module
converts what the caller gave into tensors and converts the result back into the caller's type.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import numpy as np
import torch

ArrayLike = Any  # float | np.ndarray | torch.Tensor


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_positive(name: str, value: ArrayLike) -> ArrayLike:
    """Check that a scale parameter (α, β, b) is a real number, or an array of them, finite and > 0.

    Returns the value unchanged; raises ``TypeError`` for non-numeric input and ``ValueError`` naming ``name``.
    """
    return _check(name, value, positive=True)


def check_real(name: str, value: ArrayLike) -> ArrayLike:
    """Check that ``value`` is a real number or a real array/tensor (NaN allowed: it propagates like NumPy)."""
    return _check(name, value, positive=False)


def _check(name: str, value: ArrayLike, positive: bool) -> ArrayLike:
    kind = "a positive real" if positive else "a real"
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be {kind} number or array, got {_describe(value)}")
    if isinstance(value, numbers.Real):
        v = float(value)
        if positive and (not math.isfinite(v) or v <= 0.0):
            raise ValueError(f"{name} must be finite and > 0, got {name}={_describe(value)}")
        return value
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be a real tensor, got dtype {value.dtype}")
        bad = (~torch.isfinite(value) | (value <= 0)) if positive else None
        if bad is not None and bool(bad.any()):
            first = value.detach().reshape(-1)[bad.reshape(-1)][0].item()
            raise ValueError(f"{name} must be finite and > 0 everywhere, got an element {name}={first!r}")
        return value
    if isinstance(value, (np.ndarray, np.generic, list, tuple)):
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real number or array, got {_describe(value)} (dtype {arr.dtype})")
        bad = (~np.isfinite(arr) | (arr <= 0)) if positive else None
        if bad is not None and bad.any():
            raise ValueError(f"{name} must be finite and > 0 everywhere, got an element {name}={arr[bad].flat[0]!r}")
        return value
    raise TypeError(f"{name} must be {kind} number, NumPy array or torch tensor, got {type(value).__name__}")


def _as_tensor(value: ArrayLike, like: torch.Tensor | None) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value
        if not t.is_floating_point():
            t = t.to(like.dtype if like is not None else torch.get_default_dtype())
        if like is not None:
            t = t.to(device=like.device)
        return t
    if isinstance(value, numbers.Real):
        dtype = like.dtype if like is not None else torch.float64
        device = like.device if like is not None else None
        return torch.tensor(float(value), dtype=dtype, device=device)
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    t = _from_numpy(arr)
    if like is not None:
        t = t.to(device=like.device)
    return t


def apply(fn: Callable[..., torch.Tensor], names: tuple[str, ...], *args: ArrayLike) -> ArrayLike:
    """Call the torch function ``fn`` on ``args`` and give the result back in the caller's type.

    - any torch tensor among the inputs: the result is a tensor (its dtype and device follow the tensors);
    - otherwise any NumPy array: the result is a NumPy array (float32 stays float32, integers become float64);
    - otherwise all Python numbers: the result is a Python float, computed in float64.
    Shapes broadcast like NumPy; shapes that cannot broadcast raise ``ValueError`` naming the inputs.
    """
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if tensors:
        float_tensors = [t for t in tensors if t.is_floating_point()]
        like = float_tensors[0] if float_tensors else None
        if like is not None:
            dtype = like.dtype
            for t in float_tensors[1:]:
                dtype = torch.promote_types(dtype, t.dtype)
            like = like.to(dtype) if like.dtype != dtype else like
        ts = [_as_tensor(a, like) for a in args]
        if like is not None:
            ts = [t if t.dtype == like.dtype else t.to(like.dtype) for t in ts]
        _check_broadcast(names, ts)
        return fn(*ts)
    arrays = [a for a in args if not isinstance(a, numbers.Real)]
    if arrays:
        np_args = [np.asarray(a) for a in args]
        float_dtypes = [np.asarray(a).dtype for a in arrays if np.asarray(a).dtype.kind == "f"]
        dtype = np.result_type(*float_dtypes) if float_dtypes else np.dtype(np.float64)
        if any(np.asarray(a).dtype.kind in "iu" for a in arrays):
            dtype = np.result_type(dtype, np.float64)
        ts = [_from_numpy(a.astype(dtype, copy=False)) for a in np_args]
        _check_broadcast(names, ts)
        return fn(*ts).numpy()
    ts = [torch.tensor(float(a), dtype=torch.float64) for a in args]
    return float(fn(*ts))


def _from_numpy(arr: np.ndarray) -> torch.Tensor:
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # torch.from_numpy shares memory and warns on read-only arrays (plotly returns them)
        arr = arr.copy()
    return torch.from_numpy(arr)


def _check_broadcast(names: tuple[str, ...], ts: list[torch.Tensor]) -> None:
    try:
        torch.broadcast_shapes(*[t.shape for t in ts])
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(names, ts))
        raise ValueError(f"shapes do not broadcast together: {shapes}") from None
