"""Every notebook is stored as code (no outputs, no execution counts, python3 kernelspec, a papermill `parameters`
cell setting SCALE) and runs top to bottom in smoke mode. Budget: all notebooks together ≤ 5 min on 2 cores."""
from __future__ import annotations

import json

import nbformat
import pytest

from labkit.lab.report.execute import parameter_names, scale_parameters

from _notebook_runs import ALL_NOTEBOOKS, DURATIONS, NOTEBOOK_DIR, executed

NAMES = [p.name for p in ALL_NOTEBOOKS]
#: the notebooks the lab promises (00 links to them); they must exist
REQUIRED = ("00_start_here.ipynb", "dashboard.ipynb")
EXECUTION_BUDGET_S = 300.0


def _read(name: str):
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def test_the_lab_has_its_entry_points():
    for name in REQUIRED:
        assert (NOTEBOOK_DIR / name).is_file(), name


def test_start_here_links_to_every_notebook():
    text = "\n".join(c.source for c in _read("00_start_here.ipynb").cells if c.cell_type == "markdown")
    missing = [n for n in NAMES if n != "00_start_here.ipynb" and f"({n})" not in text]
    assert not missing, f"00_start_here.ipynb does not link to {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{name}: cells {dirty} have outputs or execution counts; clear them before committing"
    assert "widgets" not in nb.metadata, f"{name}: stored widget state; clear it before committing"


@pytest.mark.parametrize("name", NAMES)
def test_kernelspec_and_parameters_cell(name):
    nb = _read(name)
    spec = nb.metadata.get("kernelspec", {})
    # without it JupyterLab asks which kernel to start, and papermill/nbclient cannot choose
    assert spec.get("name") == "python3" and spec.get("language") == "python", f"{name}: kernelspec {spec!r}"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: needs exactly one cell tagged 'parameters', found {len(tagged)}"
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert tagged[0] == first_code, f"{name}: the parameters cell must be the first code cell"
    names = parameter_names(nb)
    assert "SCALE" in names or "SMOKE" in names, f"{name}: the parameters cell must set SCALE (or SMOKE), got {names}"


def test_scale_parameters_follow_the_parameters_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SMOKE = False\nN: int = 3", metadata={"tags": ["parameters"]})])
    assert parameter_names(nb) == ["SMOKE", "N"]
    assert scale_parameters(nb, "smoke") == {"SMOKE": True}
    assert scale_parameters(nb, "full") == {"SMOKE": False}
    nb.cells[0].source = 'SCALE = "full"'
    assert scale_parameters(nb, "smoke") == {"SCALE": "smoke"}
    with pytest.raises(ValueError, match="scale"):
        scale_parameters(nb, "Smoke mode")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_runs_top_to_bottom_in_smoke_mode(name):
    nb = executed(name)  # papermill raises PapermillExecutionError naming the failing cell
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, json.dumps(errors[0])[:2000]
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells), f"{name}: a code cell did not run"
    print(f"{name}: {DURATIONS[name]:.1f} s")


@pytest.mark.slow
def test_all_notebooks_within_budget():
    for name in NAMES:
        executed(name)
    total = sum(DURATIONS[n] for n in NAMES)
    print("notebook execution (s): " + ", ".join(f"{n} {DURATIONS[n]:.1f}" for n in NAMES) + f"; total {total:.1f}")
    assert total <= EXECUTION_BUDGET_S, f"notebooks took {total:.0f} s together, budget {EXECUTION_BUDGET_S:.0f} s"
