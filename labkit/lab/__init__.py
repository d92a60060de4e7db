"""The lab's delivery floor: how a person meets the library.

- :mod:`labkit.lab.launch`: JupyterLab and the Voila dashboard on 127.0.0.1 (``python -m labkit serve``);
- :mod:`labkit.lab.voila_app`: Voila with the lab's template, which fetches nothing from a CDN;
- :mod:`labkit.lab.dashboard`: the dashboard's cards (a view, its title, one sentence) in a responsive grid;
- :mod:`labkit.lab.report`: the notebooks executed and written as offline HTML (``python -m labkit report``);
- ``static/``: what the pages load (the vendored widget renderer, KaTeX, fonts, the templates, the offline
  widget runner) and the lab's default JupyterLab settings (``jupyter_config/``).

This floor sits on top: it may use any part of labkit, and nothing in labkit uses it (``labkit.__main__`` only
names its commands). Importing it loads nothing heavy.
"""
from pathlib import Path

from labkit import PROJECT_ROOT

__all__ = ["NOTEBOOK_DIR", "STATIC_DIR"]

#: the lab's notebooks (``<project>/notebooks``): what the servers open and the reports execute
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
#: the pages' assets: vendored scripts and fonts, nbconvert and Voila templates, the offline widget runner
STATIC_DIR = Path(__file__).resolve().parent / "static"
