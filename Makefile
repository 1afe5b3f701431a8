# `make demo` and `make test` set everything up on a fresh machine (a .venv made with the
# standard library's venv), then run the main job or the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DOCS_STAMP := $(VENV)/.docs-stamp
# XLA on CPU takes each step's scratch memory afresh from the system; with glibc's transparent
# huge pages the kernel maps it in 2 MB pages instead of 4 kB ones, far fewer page faults (the
# quickstart's training step: about 28 ms against 36 ms; see the README). Ignored where unsupported.
export GLIBC_TUNABLES ?= glibc.malloc.hugetlb=1

.PHONY: demo test docs lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,ape]"
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,ape,docs]"
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(BIN)/surrogates train experiments/quickstart.yaml

# One worker per core, each test file on one worker (so a file's module fixtures, a compiled
# model for instance, are built once): most of the suite's time is XLA compiling, which uses
# one core. The notebooks run in `make docs`, which keeps their outputs for the site.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile --ignore=tests/notebooks

# The site, into site/: the notebooks executed as tests (outputs kept in build/notebooks),
# then a strict build (a broken link or reference fails it), then a check of the built pages.
docs: $(DOCS_STAMP)
	rm -rf build/notebooks
	SURROGATES_EXECUTED_NOTEBOOKS=$(CURDIR)/build/notebooks \
		$(BIN)/python -m pytest -q -n auto --dist loadfile tests/notebooks
	SURROGATES_DOCS_REQUIRE_OUTPUTS=1 NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true \
		$(BIN)/mkdocs build --strict --quiet
	$(BIN)/python docs/check_site.py site

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache build site
