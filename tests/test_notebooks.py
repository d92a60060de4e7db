"""Every notebook is stored as code (no outputs, no execution counts, python3 kernelspec, a papermill `parameters`
cell setting SCALE), opens in JupyterLab without being modified, and runs top to bottom in smoke mode; an
experiment cell run again says which runs it reused. Budget: all notebooks together ≤ 5 min on 2 cores.

"Stored" means what git stores: JupyterLab autosaves the outputs of whatever a person runs in `make lab` into the
working copy, so a notebook with outputs there is checked as git would commit it (its staged version, which is the
last commit's unless staged), and `make test` passes while someone works in the lab.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from ipykernel.ipkernel import IPythonKernel

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


def output_problems(nb) -> list[str]:
    """What a stored notebook must not hold: outputs, execution counts, widget state."""
    cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    return ([f"cells {cells} have outputs or execution counts"] if cells else []) + \
        (["it holds widget state"] if "widgets" in nb.metadata else [])


def stored_version(path: Path) -> tuple[nbformat.NotebookNode, str]:
    """The notebook as the repository stores it, and where it was read: the working copy, unless that has outputs
    (the lab autosaved a run) and git tracks the file; then the version git would commit (``git show :path``, the
    staged version, which is the last commit's unless the notebook was staged)."""
    nb = nbformat.read(path, as_version=4)
    if not output_problems(nb):
        return nb, "working copy"
    try:
        done = subprocess.run(["git", "show", f":./{path.name}"], cwd=path.parent, capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return nb, "working copy (no git)"
    if done.returncode != 0:
        return nb, "working copy (not tracked by git)"
    return nbformat.reads(done.stdout, as_version=4), "git index"


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs(name):
    nb, where = stored_version(NOTEBOOK_DIR / name)
    nbformat.validate(nb)
    problems = output_problems(nb)
    assert not problems, f"{name} ({where}): {'; '.join(problems)}; clear them before committing"


def test_the_output_check_reads_what_git_stores(tmp_path):
    """A lab autosave (outputs, counts, widget state in the working copy) passes; the same notebook committed fails."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    path = repo / "notebooks" / "00_start_here.ipynb"
    shutil.copy(NOTEBOOK_DIR / path.name, path)

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=lab", "-c", "user.email=lab@example.org", "-c", "commit.gpgsign=false",
                        *args], cwd=repo, check=True, capture_output=True, timeout=30)

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "clean")
    nb = nbformat.read(path, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs, code.execution_count = [nbformat.v4.new_output("stream", text="ran\n")], 1
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                           "version_minor": 0}}
    nbformat.write(nb, path)  # what JupyterLab's autosave writes
    stored, where = stored_version(path)
    assert where == "git index" and not output_problems(stored)
    git("commit", "-q", "-am", "outputs committed")
    stored, where = stored_version(path)
    assert output_problems(stored) == ["cells [1] have outputs or execution counts", "it holds widget state"]


@pytest.mark.parametrize("name", NAMES)
def test_opening_in_the_lab_changes_nothing(name):
    """JupyterLab writes the kernel's ``language_info`` into a notebook as its kernel connects, and a difference
    marks the notebook modified (test_browser.py checks notebook 01 in the lab). Stored complete, opening changes
    nothing. Python's version is compared by presence only: it is the one field that differs between machines."""
    stored = dict(_read(name).metadata.get("language_info", {}))
    kernel = dict(IPythonKernel.language_info)
    assert "version" in stored and {**stored, "version": ""} == {**kernel, "version": ""}, (
        f"{name}: metadata.language_info should be {json.dumps(kernel)} (open it in the lab and save it, or write "
        f"it with nbformat)")


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


def test_an_experiment_cell_run_again_says_what_it_reused(tmp_path):
    """Notebooks 05 and 06 run their experiments with a LossCurve; run again, the cell says how many runs it reused,
    from where and at which commit, and draws their stored loss curves from each run's log.jsonl."""
    from labkit import experiments as ex

    first = ex.LossCurve()
    with contextlib.redirect_stdout(io.StringIO()):
        ex.run_experiment("table4", "smoke", out=tmp_path, progress=False, callback=first)
    again, said = ex.LossCurve(), io.StringIO()
    with contextlib.redirect_stdout(said):
        results = ex.run_experiment("table4", "smoke", out=tmp_path, progress=False, callback=again)
    commit = results.rows[0]["git_commit"]
    assert f"2 of 2 runs reused from {tmp_path}, trained at {str(commit)[:7]}" in said.getvalue()
    assert set(again.curves) == set(first.curves) and again.curves  # one curve per run, as when they trained
    for row in results.rows:
        logged = [json.loads(line) for line in (Path(row["run_dir"]) / "log.jsonl").read_text().splitlines()]
        assert again.curves[f"{row['arm']}/seed{row['seed']}"] == ([r["iteration"] for r in logged],
                                                                   [r["loss"] for r in logged])
