"""The paper's Figures 1–4: as data, as static pictures, as files, and live.

==========================  ======================================================================================
module                      job
==========================  ======================================================================================
``panels``                  the figures as data (:class:`Panel`, ``figure1_panels`` … ``figure4_panels``), marks and
                            notes, parameter ranges and checks
``builders``                their matplotlib / plotly renderings (``figure1`` … ``figure4``, ``draw_matplotlib``,
                            ``plotly_figure``); re-exports ``panels``
``export``                  ``export_figures`` (PNG/SVG/PDF) and the ``figures`` command (``python -m labkit figures``)
``live``                    ipywidgets views with sliders over α and β (``live_figure1`` … ``live_figure4``),
                            recomputed in the kernel and written into the existing plot
``explorer``                an anywidget Figure 4 whose α slider repaints in the browser (``explore_figure4``);
                            its front end is ``figure4_explorer.js`` beside it
``exercises``               feedback for notebook 01's exercises (predict, then move a slider to check)
``theory``                  V(α) of Huber and D under Gaussian + Laplace noise as a plotly figure with its own slider
                            over σ/b (``variance_figure``, notebook 07)
==========================  ======================================================================================

This package re-exports the builders and ``export_figures``, so ``from labkit.figures import figure1`` works.
Importing it loads neither matplotlib nor plotly (a renderer loads its library when first called), nor ipywidgets
or anywidget: import the widgets from ``labkit.figures.live`` and ``labkit.figures.explorer``.
"""
from __future__ import annotations

from labkit.figures.builders import *  # noqa: F403  (the builders' __all__ is this package's API)
from labkit.figures.builders import __all__ as _builders_all
from labkit.figures.export import export_figures

__all__ = [*_builders_all, "export_figures"]
