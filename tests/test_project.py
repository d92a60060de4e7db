"""The project's set-up files: environment.yml agrees with pyproject.toml, the README opens with the two commands."""
import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# pip name -> conda-forge name where they differ
CONDA_NAMES = {"torch": "pytorch-cpu"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in project.get("optional-dependencies", {}).values():
        names |= {_name(r) for r in extra}
    return names


def test_environment_yml_lists_every_pyproject_dependency():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    conda, pip = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip |= {_name(r) for r in dep["pip"]}
        else:
            conda.add(_name(dep))
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert python, "environment.yml must pin python"
    missing = {n for n in _pyproject_dependencies() if CONDA_NAMES.get(n, n) not in conda and n not in pip}
    assert not missing, f"environment.yml lacks {sorted(missing)}"


def test_torch_pins_stay_on_the_local_mirror():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch>=2.4,<=2.14.1" in deps
    # lower bound: the release whose RoIHeads/RPN code the torchvision equivalence test was run against (0.29.x)
    assert "torchvision>=0.29,<=0.29.1" in deps


def test_postbuild_installs_the_package_without_dependencies():
    text = (ROOT / "postBuild").read_text()
    assert "pip install --no-deps -e ." in text


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S).group(1)
    assert [line.strip() for line in first_block.strip().splitlines()] == ["make lab", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_generated_paths_are_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    for path in (".venv/", "runs/", "reports/", "data/*"):
        assert path in ignored


def test_command_line_lists_every_command():
    import subprocess
    import sys

    from labkit.__main__ import COMMANDS

    out = subprocess.run([sys.executable, "-m", "labkit", "--help"], capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert name in out.stdout
    bad = subprocess.run([sys.executable, "-m", "labkit", "nonsense"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_dashboard_template_is_found_by_voila():
    """Voila's own template lookup, under the environment labkit.lab.voila_app sets, resolves `labkit-dashboard` to
    labkit's folder, then Voila's `lab` template it extends. (That the page then fetches nothing from outside the
    machine is checked in a browser by tests/test_browser.py.)"""
    import os
    import subprocess
    import sys

    from labkit.lab import voila_app

    env = voila_app.voila_environment({"JUPYTER_PATH": "/elsewhere", "PATH": os.environ.get("PATH", "")})
    assert env["JUPYTER_PATH"].split(os.pathsep) == [str(voila_app.TEMPLATE_ROOT), "/elsewhere"]
    assert voila_app.voila_environment(env)["JUPYTER_PATH"] == env["JUPYTER_PATH"]  # not added twice
    probe = ("import json\nfrom voila.paths import collect_template_paths\n"
             "print(json.dumps(collect_template_paths(['voila', 'nbconvert'], 'labkit-dashboard', prune=True)))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    paths = [Path(p) for p in json.loads(out)]
    assert paths[0] == voila_app.TEMPLATE_ROOT / "voila" / "templates" / voila_app.TEMPLATE
    assert any(p.parts[-3:] == ("voila", "templates", "lab") for p in paths[1:]), paths
