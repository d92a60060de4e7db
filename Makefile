# The lab's two set-up commands: `make lab` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# `make report SCALE=...`: the notebooks' SCALE parameter (smoke: the quick pass CI runs)
SCALE  ?= smoke
DATA   := data/synthetic

.PHONY: lab test venv bench report dashboard data clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (labkit)"
	touch $(STAMP)

venv: $(STAMP)

# the default synthetic dataset, generated once (synth.json is written last: its presence means complete)
data: $(STAMP)
	@if [ -f $(DATA)/synth.json ]; then echo "data: $(DATA) exists"; else $(PY) -m labkit data synth --out $(DATA); fi

# JupyterLab on 127.0.0.1 with a fresh token (the URL is printed), opening notebooks/00_start_here.ipynb
lab: $(STAMP) data
	$(PY) -m labkit serve lab

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# every notebook executed (papermill, SCALE=$(SCALE)) and written as offline HTML to reports/
report: $(STAMP) data
	$(PY) -m labkit report --scale $(SCALE) --out reports

# Figures 1-4 and the calculator as a Voila app on 127.0.0.1 (URL with token printed)
dashboard: $(STAMP)
	$(PY) -m labkit serve dashboard

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
