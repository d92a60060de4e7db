"""The package tree is the architecture: floors import only downwards, no module imports itself round a circle, no
module holds two jobs' worth of lines, JavaScript lives in .js files, and the detection/experiment path loads no SymPy.

Imports are read from the source (every ``import``/``from`` statement, in functions too), not from a running
interpreter, so a lazy import cannot hide an upward edge.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labkit"

#: lowest first; a module may import its own floor and the floors below it, never one above
FLOORS = (
    ("labkit", "labkit._io", "labkit._inputs", "labkit.losses", "labkit.densities", "labkit.stats",
     "labkit.provenance", "labkit.theory", "labkit.relatives"),
    ("labkit.symbolic",),
    ("labkit.figures", "labkit.interpret"),
    ("labkit.detection",),
    ("labkit.experiments",),
    ("labkit.lab",),
    ("labkit.__main__",),
)
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _floor(module: str) -> int:
    for level, roots in enumerate(FLOORS):
        if any(module == r or module.startswith(r + ".") for r in roots):
            return level
    raise AssertionError(f"{module} is on no floor: add it to FLOORS in tests/test_architecture.py")


def _imports(module: str) -> set[str]:
    """The labkit modules ``module`` imports (``from pkg import sub`` counts as importing ``pkg.sub``)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_module_is_on_a_floor():
    for module in MODULES:
        _floor(module)


def test_no_module_imports_a_higher_floor():
    upward = [f"{m} (floor {_floor(m)}) imports {t} (floor {_floor(t)})"
              for m, targets in GRAPH.items() for t in targets if _floor(t) > _floor(m)]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    """Tarjan's strongly connected components of the module graph: each must be a single module."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, circles


def test_the_graph_reader_sees_lazy_and_relative_imports(tmp_path):
    # the checks above are only as good as _imports: it must see an import inside a function
    assert "labkit.losses" in GRAPH["labkit.symbolic.bounds"]  # imported inside check_bounds_numerically
    assert "labkit.interpret.settings" in GRAPH["labkit.detection.losses"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_hold_one_job(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (> {MAX_LINES}): it likely holds two jobs"


# statements only JavaScript has (an HTML <script> wrapper that loads a .js file is fine)
JS_IN_PYTHON = re.compile(r"\bfunction\b[\w\s]*\([^()]*\)\s*\{|=>\s*[{(]|\b(const|let)\s+\w+\s*=|\bdocument\.|\bawait\s+import\(")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_javascript_inside_python_strings(module):
    tree = ast.parse(MODULES[module].read_text())
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    code = [s for s in strings if JS_IN_PYTHON.search(s)]
    assert not code, f"{module} holds JavaScript in a string; put it in a .js file: {code[0][:120]!r}"


def _loaded(statement: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=PACKAGE.parent).stdout
    return set(out.split())


def test_detection_and_experiments_do_not_load_the_symbolic_derivations():
    # torchvision itself imports SymPy (through torch's compiler stack), so the point is labkit's own path: the
    # presets and the Section 5 mapping come from plain code, not from labkit.symbolic
    loaded = _loaded("import labkit.detection.engine, labkit.detection.cli, labkit.experiments")
    assert not {m for m in loaded if m.startswith("labkit.symbolic")}
    interpret_only = _loaded("import labkit.interpret, labkit.interpret.exports")
    assert "sympy" not in interpret_only and "torch" not in interpret_only
