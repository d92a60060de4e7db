"""Each notebook executed once per test session in smoke mode, shared by test_notebooks.py and test_reports.py.

Execution goes through :func:`labkit.lab.report.execute.execute_notebook` (papermill, kernel python3, cwd notebooks/,
SCALE="smoke"): the same path `make report` takes.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

from labkit.lab.report.execute import SMOKE, execute_notebook, list_notebooks

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
#: every notebook of the lab, the dashboard included
ALL_NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: the notebooks `make report` turns into HTML
REPORTED_NOTEBOOKS = list_notebooks(NOTEBOOK_DIR)
#: seconds each notebook took to execute, filled as they run (printed by the tests)
DURATIONS: dict[str, float] = {}


@functools.cache
def executed(name: str):
    """The executed NotebookNode of notebooks/<name>, run once per session (papermill raises on a failing cell)."""
    start = time.perf_counter()
    nb = execute_notebook(NOTEBOOK_DIR / name, SMOKE, timeout=300)
    DURATIONS[name] = time.perf_counter() - start
    return nb
