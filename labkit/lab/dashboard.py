"""The dashboard's layout (``notebooks/dashboard.ipynb``, served by ``make dashboard``): every view in a card, with
its title above it and one sentence below saying what to look for, and the cards in a responsive grid: two columns
where two cards fit side by side (a window from about 1200 px), one column below that.

The notebook owns the words (titles and sentences, as HTML fragments) and the views; this module only lays them
out, with ipywidgets' own ``GridBox``, so the grid works the same in JupyterLab, Voila and an offline report.
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets

__all__ = ["CARD_MIN_WIDTH", "card", "grid"]

#: a card's narrowest width: a 520 px figure (``labkit.figures.live.VIEWS``, 5.2 in at 100 dpi) and its padding
CARD_MIN_WIDTH = "540px"


def card(title: str, view: widgets.Widget, note: str, *, wide: bool = False) -> widgets.VBox:
    """``view`` under ``title`` with ``note`` (one sentence: what to look for) below it. ``title`` and ``note``
    are HTML fragments (``H<sub>α</sub>``). ``wide``: the card spans every column of the grid."""
    if not isinstance(view, widgets.Widget):
        raise TypeError(f"view must be an ipywidgets widget, got {type(view).__name__}")
    if not title.strip() or not note.strip():
        raise ValueError("title and note must say something: a card is a view with its title and one sentence")
    heading = widgets.HTML(f"<h3 style='margin:0 0 4px 0;font-size:1.1em'>{title}</h3>")
    sentence = widgets.HTML(f"<p style='margin:4px 0 0 0;color:#444;line-height:1.4'>{note}</p>",
                            layout=widgets.Layout(max_width="100%"))
    box = widgets.VBox([heading, view, sentence], layout=widgets.Layout(
        padding="8px 10px", border="1px solid #e0e0e0", min_width="0", overflow="auto",
        grid_column="1 / -1" if wide else None))
    box.add_class("labkit-card")
    return box


def grid(cards: Sequence[widgets.Widget]) -> widgets.GridBox:
    """The cards in as many columns of at least :data:`CARD_MIN_WIDTH` as fit (one column in a narrow window)."""
    cards = list(cards)
    if not cards:
        raise ValueError("cards must hold at least one card")
    box = widgets.GridBox(cards, layout=widgets.Layout(
        grid_template_columns=f"repeat(auto-fill, minmax({CARD_MIN_WIDTH}, 1fr))", grid_gap="16px", width="100%"))
    box.add_class("labkit-dashboard")
    return box
