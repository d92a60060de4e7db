"""Running the lab's notebooks for a report: which notebooks, which ``SCALE``, and papermill executing them.

Each notebook runs top to bottom in a fresh ``python3`` kernel whose working directory is ``notebooks/``, with its
``parameters`` cell given the scale (``"smoke"``: the quick pass CI runs). Nothing is written: the executed
notebook comes back in memory.
"""
from __future__ import annotations

import ast
import contextlib
import os
from pathlib import Path
from typing import Iterator

from labkit.lab import NOTEBOOK_DIR

__all__ = ["SCALE_PARAMETER", "SMOKE", "SMOKE_PARAMETER", "check_scale", "execute_notebook",
           "list_notebooks", "parameter_names", "scale_parameters"]

#: the ``SCALE`` every notebook knows: the quick pass CI runs. Larger scales are each notebook's own ("full", "lab",
#: "coco", ...); the notebook's parameters cell says which it accepts.
SMOKE = "smoke"
#: the parameter papermill injects into each notebook's ``parameters`` cell: ``SCALE = "<scale>"``, or, for a
#: notebook whose parameters cell has the boolean ``SMOKE`` instead, ``SMOKE = (scale == "smoke")``
SCALE_PARAMETER = "SCALE"
SMOKE_PARAMETER = "SMOKE"


def check_scale(scale: str) -> str:
    """``scale`` when it is a lower-case word (a notebook's ``SCALE``); else a ``ValueError`` naming it."""
    if not isinstance(scale, str) or not scale.isidentifier() or not scale.islower():
        raise ValueError(f"scale must be a lower-case word such as {SMOKE!r} (the notebooks' SCALE), got scale={scale!r}")
    return scale


@contextlib.contextmanager
def _kernel_environment(**variables: str) -> Iterator[None]:
    """Set environment variables for the kernels started inside the block (they inherit this process's)."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def parameter_names(nb) -> list[str]:
    """Names assigned at the top level of the notebook's cell tagged ``parameters`` (empty when it has none)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)]
    return []


def scale_parameters(nb, scale: str) -> dict[str, object]:
    """The papermill parameters that select ``scale`` in this notebook (see ``SCALE_PARAMETER``)."""
    scale = check_scale(scale)
    names = parameter_names(nb)
    if SMOKE_PARAMETER in names and SCALE_PARAMETER not in names:
        return {SMOKE_PARAMETER: scale == SMOKE}
    return {SCALE_PARAMETER: scale}


def execute_notebook(path: str | os.PathLike, scale: str = SMOKE, *, timeout: int = 600):
    """Run a notebook top to bottom with papermill in a fresh ``python3`` kernel whose working directory is the
    notebook's folder, ``scale`` selected by :func:`scale_parameters`. Returns the executed ``NotebookNode``
    (nothing written); raises papermill's ``PapermillExecutionError`` naming the failing cell."""
    # here, not at the top: ~1 s of imports (jsonschema), and `python -m labkit` imports every command's module
    import nbformat
    import papermill

    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"path must be an existing .ipynb file, got path={str(path)!r}")
    parameters = scale_parameters(nbformat.read(path, as_version=4), scale)
    # plotly's mimetype alone: embed_plotly_outputs renders it, so no renderer can add a CDN <script>
    with _kernel_environment(PLOTLY_RENDERER="plotly_mimetype"):
        return papermill.execute_notebook(
            str(path), None, parameters=parameters, kernel_name="python3", cwd=str(path.parent),
            progress_bar=False, log_output=False, request_save_on_cell_execute=False, execution_timeout=timeout,
        )


def list_notebooks(notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """The lab's notebooks, in name order: each makes a report (the Voila dashboard too, as ``dashboard.html``)."""
    folder = Path(notebook_dir)
    if not folder.is_dir():
        raise ValueError(f"notebook_dir must be a directory, got {str(folder)!r}")
    return sorted(folder.glob("*.ipynb"))
