"""Notation renders everywhere, and every teaching notebook has exercises.

Raw notation is TeX-ish markup a reader would see as typed: ``D_{α,β}``, ``e^{-x}``, or a one-letter subscript such
as ``H_α`` or ``σ_x``. It may appear only where something renders it:

- notebook markdown and the project's READMEs, the results folders' included (:data:`PROSE_FILES`): inside
  ``$…$`` / ``$$…$$`` (KaTeX in the reports, MathJax in the lab and on GitHub), as ``<sub>`` (the table lines that
  :meth:`~labkit.experiments.display.ResultTable.to_markdown` writes), or in code spans; link targets and bare URLs
  are not prose;
- string literals in notebook code cells and in labkit's figure, table and exercise modules: inside ``$…$``
  (matplotlib's mathtext, or Markdown/HTML output that the lab and the reports typeset). A string may hold an
  identifier (``"n_seeds"``, ``"a_linear"``, ``"x_max"``), so there a one-letter subscript counts only when the
  subscript is one character too (``H_α``, ``b_1``, ``w_a``; not ``n_seeds``, ``runs/b_1.json``);
- what the figures and tables actually draw: matplotlib text inside ``$…$`` only; plotly text (which renders no
  TeX without MathJax, and the reports carry none) and the explorer's labels never hold ``$``, ``_{``, ``^{`` or a
  one-letter subscript — they use plotly's ``<sub>``/``<sup>``; tables as HTML/Markdown use ``<sub>``.

Each failure names the place: the notebook and cell, or the module and line, or the figure and artist.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: notebooks that teach: every one but the tour and the dashboard needs exercises
NOT_TEACHING = {"00_start_here.ipynb", "dashboard.ipynb"}
#: notebooks whose exercise checks are labkit feedback functions (labkit.feedback)
FEEDBACK_NOTEBOOKS = ("01", "02", "03", "04", "05", "06")
#: labkit modules whose strings become figure, table or exercise text
LABEL_MODULES = sorted([*(ROOT / "labkit" / "figures").glob("*.py"), ROOT / "labkit" / "interpret" / "calculator.py",
                        ROOT / "labkit" / "interpret" / "tables.py", ROOT / "labkit" / "interpret" / "exercises.py",
                        ROOT / "labkit" / "experiments" / "display.py", ROOT / "labkit" / "experiments" / "exercises.py",
                        ROOT / "labkit" / "lab" / "report" / "twins.py", ROOT / "labkit" / "lab" / "dashboard.py",
                        ROOT / "labkit" / "feedback.py", ROOT / "labkit" / "theory" / "exercises.py",
                        ROOT / "labkit" / "experiments" / "headstudy" / "display.py",
                        ROOT / "labkit" / "experiments" / "headstudy" / "report.py",
                        ROOT / "labkit" / "experiments" / "uncertaintystudy" / "display.py"])
#: label strings kept plain on purpose: Tables 1–2's row labels and units, which ``interpret.tables.subscripts`` sets
#: as <sub> in Markdown and HTML (test_tables_render_their_notation checks that) and the terminal shows as typed
PLAIN_LABELS = {"labkit/interpret/tables.py": {"σ_x", "σ_y", "σ_w", "σ_h", "w_a", "h_a"}}
#: Markdown files outside the notebooks that readers see rendered (GitHub, JupyterLab's Markdown viewer): the
#: project's READMEs and every results folder's (a glob, so a new results folder is scanned too)
PROSE_FILES = [ROOT / "README.md", ROOT / "data" / "README.md",
               ROOT / "labkit" / "lab" / "static" / "assets" / "README.md",
               *sorted((ROOT / "results").glob("**/README.md"))]

MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
URL = re.compile(r"\b(?:https?|file)://[^\s)>\]]+")
#: TeX-style markup, or a one-letter name with a subscript (H_α, σ_x, w_a; not loc_err or test_figures)
RAW = re.compile(r"_\{|\^\{|(?<![A-Za-z0-9_\\])[A-Za-zα-ωΑ-Ω]['′]?_[A-Za-z0-9α-ωΑ-Ω*]")
TEX_BRACES = re.compile(r"_\{|\^\{")
#: in a string: TeX-style markup, or a one-letter name with a one-character subscript (H_α, H'_α, b_1, w_*) that no
#: word character (nor a file suffix) follows — n_seeds, a_linear, x_max and b_1.json are identifiers or file names
RAW_IN_STRING = re.compile(r"_\{|\^\{|(?<![A-Za-z0-9_\\.])[A-Za-zα-ωΑ-Ω]['′]?_[A-Za-z0-9α-ωΑ-Ω*](?!\.?\w)")


def _snippets(text: str, pattern: re.Pattern = RAW) -> list[str]:
    return [text[max(0, m.start() - 25): m.end() + 25].replace("\n", " ") for m in pattern.finditer(text)]


def raw_in_markdown(source: str) -> list[str]:
    """Raw notation in Markdown prose: what is left after math, code, link targets and URLs are taken out."""
    prose = URL.sub(" ", LINK_TARGET.sub("]", MATH.sub(" ", CODE.sub(" ", source))))
    return _snippets(prose)


def raw_in_string(text: str) -> list[str]:
    """``_{``, ``^{`` or a one-character subscript (``H_α``) in a string literal outside ``$…$`` and URLs."""
    return _snippets(URL.sub(" ", MATH.sub(" ", text)), RAW_IN_STRING)


def _code_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal in a code cell (IPython magics and shell lines left out)."""
    lines = [("" if line.lstrip().startswith(("%", "!")) else line) for line in source.splitlines()]
    tokens = tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline)
    return [(t.start[0], t.string) for t in tokens if t.type == tokenize.STRING]


def _module_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant in a module, docstrings left out (they are documentation, read as
    source), the literal parts of f-strings included."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    out, parts = [], set()
    for n in ast.walk(tree):
        if isinstance(n, ast.JoinedStr):  # an f-string: its literal parts, with {} where a value goes
            parts.update(id(v) for v in n.values)
            out.append((n.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in n.values)))
    out += [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings and id(n) not in parts]
    return out


# ---------------------------------------------------------------------------------------------------------------
# the scanners, on examples
# ---------------------------------------------------------------------------------------------------------------
def test_the_scanners_find_raw_notation_and_pass_rendered_notation():
    assert raw_in_markdown("Table 4: H_α against D_{α/2,1/α}") and raw_in_markdown("the scale σ_x of x")
    assert raw_in_markdown("e^{-x} decays")
    assert not raw_in_markdown(r"Table 4: $H_\alpha$ against $D_{\alpha/2,1/\alpha}$, `loc_err`, test_figures.py")
    assert not raw_in_markdown("[01 · Huber](01_huber_and_laplace.ipynb), b₁ = 1/40, α·σ, w<sub>a</sub>")
    assert not raw_in_markdown("$$\nD_{\\alpha,\\beta}(x)\n$$ and ```\nx_{1}\n```")
    assert raw_in_string("H_{α}") and not raw_in_string(r"$D_{\alpha,\beta}$") and not raw_in_string("loc_err")


def test_the_scanners_find_one_character_subscripts_and_pass_identifiers():
    sample = "The loss D_α and H_a, with b_1 = 1/40 and H'_α; see `noise_study`, `w_a` and loc_err."
    assert len(raw_in_markdown(sample)) == 4 and len(raw_in_string(sample)) == 5  # a string has no code spans
    assert raw_in_markdown("the bound D_α") and raw_in_string("the bound D_α") and raw_in_string("H_a.")
    assert raw_in_string("b_1 = 0.1") and raw_in_string("σ_x of x") and raw_in_string("w_*")
    assert raw_in_string("log w*/w_a") and raw_in_markdown("log w*/w_a")
    for text in ("noise_study", "`D_α`", "`n_seeds` of `a_linear`", "https://example.org/a_b/c_1",
                 "[a link](runs/b_1/config.json)", r"$D_\alpha$ and $H_a$"):
        assert not raw_in_markdown(text), text
    for text in ("noise_study", "n_seeds", "a_linear", "x_max", "runs/b_1.json", "b_1.json", "seed_3",
                 "https://example.org/p_1", r"$H_\alpha$ (eq. 5)"):
        assert not raw_in_string(text), text


@pytest.mark.parametrize("path", PROSE_FILES, ids=[str(p.relative_to(ROOT)) for p in PROSE_FILES])
def test_readme_notation_renders(path):
    problems = [f"{path.relative_to(ROOT)}: …{s}…" for s in raw_in_markdown(path.read_text())]
    assert not problems, "raw notation (put it in $…$ or a code span):\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------------------------
# notebooks
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_notation_renders(path):
    nb = nbformat.read(path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            problems += [f"{path.name} cell {i} (markdown): …{s}…" for s in raw_in_markdown(cell.source)]
        elif cell.cell_type == "code":
            problems += [f"{path.name} cell {i} line {line} (string): {s!r}"
                         for line, text in _code_strings(cell.source) for s in raw_in_string(text)]
    assert not problems, "raw notation (put it in $…$):\n" + "\n".join(problems)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name not in NOT_TEACHING],
                         ids=[p.stem for p in NOTEBOOKS if p.name not in NOT_TEACHING])
def test_every_teaching_notebook_has_exercises_with_folded_answers(path):
    """Principle 20: at least two exercises per notebook, each a markdown cell tagged ``exercise`` that asks the
    reader to **predict** and folds a worked answer in ``<details>``, followed by a code cell tagged ``exercise``
    to run as the check; in notebooks 01–06 the check is a labkit feedback function (``exercises.…``)."""
    nb = nbformat.read(path, as_version=4)
    tagged = [(i, c) for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("tags", [])]
    questions = [(i, c) for i, c in tagged if c.cell_type == "markdown"]
    assert len(questions) >= 2, f"{path.name}: {len(questions)} exercise(s) tagged 'exercise', need ≥ 2"
    for i, q in questions:
        where = f"{path.name} cell {i}"
        assert "**predict**" in q.source.lower(), f"{where}: an exercise asks the reader to **predict**"
        assert "<details><summary>Worked answer</summary>" in q.source and "</details>" in q.source, (
            f"{where}: the worked answer goes in a collapsed <details><summary>Worked answer</summary> block")
        check = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        assert check is not None and check.cell_type == "code" and "exercise" in check.metadata.get("tags", []), (
            f"{where}: the next cell should be the check, a code cell tagged 'exercise'")
        if path.name[:2] in FEEDBACK_NOTEBOOKS:
            assert re.search(r"\bexercises\.\w+\(", check.source), (
                f"{where}: the check calls a labkit exercises function")


# ---------------------------------------------------------------------------------------------------------------
# labkit's label strings, read from the source
# ---------------------------------------------------------------------------------------------------------------
def test_label_modules_hold_no_raw_notation_outside_math():
    problems = [f"{path.relative_to(ROOT)}:{line}: {s!r}"
                for path in LABEL_MODULES for line, text in _module_strings(path)
                if text not in PLAIN_LABELS.get(path.relative_to(ROOT).as_posix(), ()) for s in raw_in_string(text)]
    assert not problems, "raw notation in a label string (use $…$ for matplotlib, <sub> for plotly):\n" + \
        "\n".join(problems)


# ---------------------------------------------------------------------------------------------------------------
# what is drawn
# ---------------------------------------------------------------------------------------------------------------
def _matplotlib_texts(fig) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def raw_in_mathtext(text: str) -> list[str]:
    """matplotlib shows TeX literally outside ``$…$`` (an identifier such as ``loc_err`` is meant literally); an odd
    number of ``$`` is a broken label."""
    if text.count("$") % 2:
        return [text]
    return _snippets(MATH.sub(" ", text))


def raw_in_plotly(text: str) -> list[str]:
    """plotly renders no TeX offline: no ``$`` at all, and no TeX-style or one-letter subscripts."""
    return ([text] if "$" in text else []) + _snippets(text)


def _fake_noise_study():
    from labkit.experiments.results import Results
    from labkit.stats import mean_ci

    rows = tuple({"experiment": "noise-study", "arm": f"{b}-{ls}", "label": "", "seed": s, "label_noise": b,
                  "label_scale": ls, "status": "ok", "loc_err": 0.1 + 0.01 * s, "AP75": 0.3 - 0.01 * s,
                  "AP50": 0.5, "AP": 0.2, "loc_iou": 0.8} for b in (0.0, 0.1) for ls in ("1/40", "1/10")
                 for s in range(3))
    metrics = ("AP", "AP50", "AP75", "loc_err", "loc_iou")
    summary = tuple({"arm": f"{b}-{ls}", "label": f"b={b}", "label_noise": b, "label_scale": ls, "n_seeds": 3,
                     **{m: mean_ci([r[m] for r in rows if r["label_noise"] == b and r["label_scale"] == ls])
                        for m in metrics}} for b in (0.0, 0.1) for ls in ("1/40", "1/10"))
    return Results(experiment={"name": "noise-study", "title": "t", "paper": None}, scale={"name": "lab"},
                   provenance={"device": "cpu", "git_commit": "0" * 10, "date": "today"}, rows=rows,
                   summary=summary)


def test_drawn_figures_render_their_notation():
    from labkit import figures
    from labkit.experiments import display
    from labkit.figures.explorer import Figure4Explorer
    from labkit.interpret import calculator

    problems = []
    drawn = {f"{name}(α={alpha})": build(alpha) if name != "figure4" else build()
             for name, build in figures.FIGURES.items() for alpha in (1.0, 0.006)}
    drawn["implied noise"] = calculator.plot_implied_densities([0.05, 0.05, 0.1, 0.1], [0.2, 0.2, 0.4, 0.4])
    results = _fake_noise_study()
    drawn["noise study"] = display.plot_noise_study(results, "loc_err")
    for name, fig in drawn.items():
        problems += [f"{name} (matplotlib): {s!r}" for text in _matplotlib_texts(fig) for s in raw_in_mathtext(text)]
    for name, build in figures.FIGURES.items():
        fig = build(backend="plotly")
        texts = [t.name or "" for t in fig.data] + [str(x) for t in fig.data for x in (t.text or ())]
        texts += [a.text or "" for a in fig.layout.annotations]
        texts += [ax.title.text or "" for ax in (fig.layout[k] for k in fig.layout if k.startswith(("xaxis", "yaxis")))]
        problems += [f"{name} (plotly): {s!r}" for text in texts for s in raw_in_plotly(text)]
    explorer = Figure4Explorer(0.5, positions=11, n_points=21)
    problems += [f"explorer label: {s!r}" for text in [*explorer.labels.values(), *explorer.notes,
                                                       *explorer.mark_labels] for s in raw_in_plotly(text)]
    assert not problems, "raw notation in a drawn figure:\n" + "\n".join(problems)


def test_tables_render_their_notation():
    from labkit import interpret
    from labkit.experiments import display

    results = _fake_noise_study()
    tables = {"table1": interpret.table1(), "table2": interpret.table2()}
    problems = [f"{name} ({form}): {s!r}" for name, t in tables.items()
                for form, text in (("html", t.to_html()), ("markdown", t.to_markdown())) for s in _snippets(text)]
    shown = {"arms_table": display.arms_table("noise-study", "lab"), "best_table": display.best_table(results, "loc_err"),
             "paired_table": display.paired_table(results, "AP75"), "summary_table": display.summary_table(results),
             "paper_table": display.paper_table("table4")}
    for name, t in shown.items():
        cells = [t.title, t.note, *t.header, *(c for row in t.rows for c in row)]
        problems += [f"{name}: {s!r}" for text in cells for s in _snippets(text)]
    # arm labels kept plain in the results (H_α, D_{α/2,1/α}, w*/w_a): Markdown sets them as <sub>, like Tables 1–2
    labelled = {name: display.arms_table(name, "lab") for name in ("table4", "table5")}
    problems += [f"{name} (markdown): {s!r}" for name, t in labelled.items() for s in _snippets(t.to_markdown())]
    assert "H_α" in labelled["table4"].to_text()  # the terminal shows them as typed
    assert not problems, "raw notation in a table:\n" + "\n".join(problems)


def test_noise_levels_and_scales_are_written_as_the_grid_writes_them():
    """Label scales α·σ as fractions (the grid's 1/40, not 0.025), noise levels b₁ as decimals (the grid's and the
    arm labels' 0.025)."""
    from labkit.experiments import display

    assert [display.fraction_text(v) for v in (0.025, 0.05, 0.1, 0.2, 1 / 3)] == ["1/40", "1/20", "1/10", "1/5", "1/3"]
    assert display.fraction_text(0.1234567) == "0.123" and display.noise_text(0.025) == "0.025"
    best = display.best_table(_fake_noise_study(), "loc_err")
    assert [r[0] for r in best.rows] == ["0", "0.1"] and {r[1] for r in best.rows} <= {"1/40", "1/10", "tie"}
