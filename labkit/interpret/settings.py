"""The one stage-settings type: a stage's box-loss numbers λ, α, σ_x, σ_y, σ_w, σ_h (one column of Table 1), exact.

Everything in the lab that holds these six numbers holds a :class:`StageSettings`: the Table 1 presets, the
calculator's suggestions, the detector's box-loss configuration (which adds the loss form and the size target), the
experiments' arms and every run directory's ``config.json``.

Numbers are :class:`fractions.Fraction`, and there is one rule for turning input into them, :func:`exact`:

- ints, Fractions and strings (``"1/9"``, ``"0.05"``) are read exactly;
- a float is read through its shortest decimal form (``repr``): ``0.05`` is 1/20 and ``0.1`` is 1/10, never the
  binary neighbour 3602879701896397/36028797018963968. A float that was itself computed (``0.1 + 0.2``) keeps the
  digits its repr shows (``0.30000000000000004``): give a string or a Fraction when that matters.

Loss forms (how c·H_α on σ-scaled targets is read, Section 5): ``"implementation"`` — the released code's
(λ/α)·H_α (eqs. 37–42, 52–53); ``"paper"`` — the publication's λ·H_α (eq. 36); ``"laplace_upper"`` — (λ/α)·D_{α/2,1/α},
H_α replaced by its upper bound of eq. 27 (Table 4).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any, Mapping, Sequence, Union

__all__ = [
    "IMPLEMENTATION",
    "PAPER",
    "LAPLACE_UPPER",
    "FORMS",
    "STAGES",
    "COORDINATES",
    "Number",
    "exact",
    "check_choice",
    "fraction_text",
    "StageSettings",
]

IMPLEMENTATION = "implementation"  # (λ/α)·H_α on σ-scaled targets, eqs. 37–42
PAPER = "paper"  # λ·H_α, eq. 36
LAPLACE_UPPER = "laplace_upper"  # (λ/α)·D_{α/2,1/α}, eq. 27 put in H_α's place (Table 4)
FORMS = (IMPLEMENTATION, PAPER, LAPLACE_UPPER)

#: the two networks of Faster R-CNN that regress boxes
STAGES = ("rpn", "detection")
#: the four box coordinates; x and w are measured in anchor widths w_a, y and h in anchor heights h_a
COORDINATES = ("x", "y", "w", "h")

Number = Union[int, Fraction, float, str]

_NUMBER_HELP = "a number (int, Fraction, float or a string like '1/9' or '0.05')"


def exact(name: str, value: Number, *, allow_zero: bool = False) -> Fraction:
    """``value`` as an exact, finite :class:`Fraction` > 0 (≥ 0 with ``allow_zero``): the lab's one rule for reading
    numbers (see the module docstring). Raises ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name} must be {_NUMBER_HELP}, got {value!r}")
    if isinstance(value, str):
        try:
            v = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{name} must be {_NUMBER_HELP}, got {name}={value!r}") from None
    elif isinstance(value, numbers.Rational):
        v = Fraction(value)
    elif isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"{name} must be finite, got {name}={value!r}")
        v = Fraction(repr(f))
    else:
        raise TypeError(f"{name} must be {_NUMBER_HELP}, got {type(value).__name__}")
    if v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {name}={value!r}")
    return v


def check_choice(name: str, value: Any, valid: Sequence[str]) -> str:
    """``value`` if it is one of ``valid``; else a ``ValueError`` that lists them."""
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid {name}s: {', '.join(valid)}")
    return value


def fraction_text(value: Fraction) -> str:
    """An exact number as the tables print it: ``3`` or ``1/9``."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


@dataclass(frozen=True)
class StageSettings:
    """One stage's box-loss numbers (one column of Table 1), exact.

    ======================  ====================================================================================
    paper                   here
    ======================  ====================================================================================
    λ                       ``lam``: the loss weight, ≥ 0 (0 switches the stage's box regression off)
    α                       ``alpha``: the Huber transition point of H_α (eq. 5), > 0
    σ_x, σ_y, σ_w, σ_h      ``sigma_x`` …: the target scaling of eqs. 38 and 44, > 0 (a box coder's weights are 1/σ)
    ======================  ====================================================================================

    Arguments are read by :func:`exact` (ints, Fractions, strings, floats by their decimal form).
    """

    lam: Fraction
    alpha: Fraction
    sigma_x: Fraction
    sigma_y: Fraction
    sigma_w: Fraction
    sigma_h: Fraction

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, exact(f.name, getattr(self, f.name), allow_zero=f.name == "lam"))

    @property
    def sigmas(self) -> tuple[Fraction, Fraction, Fraction, Fraction]:
        """(σ_x, σ_y, σ_w, σ_h), in the order of :data:`COORDINATES`."""
        return (self.sigma_x, self.sigma_y, self.sigma_w, self.sigma_h)

    def sigma(self, coordinate: str) -> Fraction:
        return self.sigmas[COORDINATES.index(check_choice("coordinate", coordinate, COORDINATES))]

    def describe(self, digits: int = 4) -> str:
        """For people: ``λ = 0.4141, α = 1, σ = (0.04617, 0.04557, 0.1104, 0.1076)`` — each number to ``digits``
        significant digits (σ in the order x, y, w, h); :meth:`to_dict` keeps the exact values."""
        if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 15:
            raise ValueError(f"digits must be an int in 1..15, got digits={digits!r}")
        text = lambda v: f"{float(v):.{digits}g}"  # noqa: E731
        return (f"λ = {text(self.lam)}, α = {text(self.alpha)}, "
                f"σ = ({', '.join(text(v) for v in self.sigmas)})")

    def to_dict(self) -> dict[str, str]:
        """JSON-ready: each number as its exact string ("1/9")."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StageSettings":
        """The inverse of :meth:`to_dict`; unknown or missing keys raise naming them."""
        if not isinstance(data, Mapping):
            raise TypeError(f"stage settings must be a mapping, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        unknown, missing = sorted(set(data) - set(names)), [n for n in names if n not in data]
        if unknown or missing:
            raise ValueError(f"stage settings: unknown keys {unknown}, missing keys {missing}; expected {names}")
        return cls(**{n: data[n] for n in names})
