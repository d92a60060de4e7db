"""Voila with the lab's template (``python -m labkit.lab.voila_app NOTEBOOK [voila options]``; ``make dashboard``
uses it).

The template ``labkit-dashboard`` (``labkit/lab/static/jupyter/voila/templates/``) is Voila's ``lab`` template without
the stylesheets it fetches from a CDN, so the dashboard works with no network. Voila finds templates on the Jupyter
data path; this entry point puts labkit's folder first on ``JUPYTER_PATH`` (for Voila and the kernels it starts,
where it adds nothing else) and selects the template unless the command line names another.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from labkit.lab import STATIC_DIR

__all__ = ["TEMPLATE", "TEMPLATE_ROOT", "main", "voila_environment"]

#: the Jupyter data folder holding ``voila/templates/labkit-dashboard``
TEMPLATE_ROOT = STATIC_DIR / "jupyter"
TEMPLATE = "labkit-dashboard"


def voila_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) whose ``JUPYTER_PATH`` starts with :data:`TEMPLATE_ROOT`."""
    env = dict(os.environ if environ is None else environ)
    rest = [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p and Path(p) != TEMPLATE_ROOT]
    env["JUPYTER_PATH"] = os.pathsep.join([str(TEMPLATE_ROOT), *rest])
    return env


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith(("--template", "--VoilaConfiguration.template")) for a in args):
        args.append(f"--template={TEMPLATE}")
    os.environ.update(voila_environment())
    from voila.app import main as voila_main  # here: a 1.3 s import that voila_environment's users never need

    sys.argv = ["voila", *args]
    voila_main()


if __name__ == "__main__":
    main()
