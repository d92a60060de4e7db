"""What an exercise check says: :class:`Feedback` (right, not quite, or "make your prediction first") and the two
ways the lab's exercises compare a reader's answer with the value labkit computes — :func:`number` (within a
tolerance) and :func:`choice` (one of named options).

Every notebook's checks build on these (:mod:`labkit.symbolic.exercises`, :mod:`labkit.figures.exercises`,
:mod:`labkit.interpret.exercises`, :mod:`labkit.experiments.exercises`); the value they compare against is always
computed by the library, never typed in. A check called with ``None`` (no prediction yet) only asks for one: it
reveals nothing.
"""
from __future__ import annotations

import html
import numbers
from dataclasses import dataclass
from typing import Optional, Sequence

__all__ = ["Feedback", "choice", "number"]

_HEADS = {True: "Right.", False: "Not quite.", None: "Make your prediction first."}
_COLOURS = {True: "#1a7f37", False: "#bc4c00", None: "#57606a"}


@dataclass(frozen=True)
class Feedback:
    """``correct``: True, False, or None when no prediction was given; ``message``: prose with $…$ math."""

    correct: Optional[bool]
    message: str

    def _repr_html_(self) -> str:
        colour = _COLOURS[self.correct]
        return (f'<div style="border-left:4px solid {colour};padding:0.3em 0.8em"><b style="color:{colour}">'
                f"{_HEADS[self.correct]}</b> {html.escape(self.message, quote=False)}</div>")

    def __str__(self) -> str:
        return f"{_HEADS[self.correct]} {self.message}"


def number(answer, truth: float, rel: float, explain: str, *, floor: float = 0.005) -> Feedback:
    """Feedback on a numeric ``answer`` against ``truth``: right within ``rel`` of it (at least ``floor``)."""
    if answer is None:
        return Feedback(None, "Replace None by your number and run the cell again.")
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        return Feedback(False, f"Give a number (got {answer!r}).")
    ok = abs(float(answer) - truth) <= max(rel * abs(truth), floor)
    return Feedback(ok, f"You said {float(answer):.4g}; the value is {truth:.4g}. {explain}")


def choice(answer, truth: str, options: Sequence[str], explain: str) -> Feedback:
    """Feedback on an ``answer`` that names one of ``options`` (case and surrounding spaces do not matter)."""
    if answer is None:
        return Feedback(None, "Replace None by your answer (one of " + ", ".join(f'"{o}"' for o in options)
                        + ") and run the cell again.")
    given = str(answer).strip().lower()
    if given not in {o.lower() for o in options}:
        return Feedback(False, "Answer with one of " + ", ".join(f'"{o}"' for o in options) + f" (got {answer!r}).")
    return Feedback(given == truth.lower(), f'You said "{given}"; the answer is "{truth}". {explain}')
