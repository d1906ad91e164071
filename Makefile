# Two commands: `make run` serves the platform, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint types pytest install install-dev clean vendor messages screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/maxloyalty serve --demo-once

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: install-dev
	$(BIN)/mypy

# Workers for the suite: each gets its own database cloned from one migrated template.
PYTEST_WORKERS ?= auto
# Branch coverage floors, package:percent; `make test` fails below any of them.
COVERAGE_FLOORS := maxloyalty:85 maxloyalty/ledger:90 maxloyalty/identity:90

pytest: install-dev
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --cov --cov-report=
	@for floor in $(COVERAGE_FLOORS); do \
	  package=$${floor%:*}; least=$${floor#*:}; \
	  total=$$($(BIN)/coverage report --format=total --include="*/src/$$package/*"); \
	  echo "coverage of $$package: $$total% (floor $$least%)"; \
	  awk -v total=$$total -v least=$$least 'BEGIN { exit !(total >= least) }' || exit 1; \
	done

test: lint types pytest

# The pages' third-party scripts, fetched from npm at pinned versions (committed).
vendor:
	scripts/vendor.sh

# Extract the pages' messages and merge them into the ru/en catalogues (then translate).
messages: install-dev
	$(BIN)/pybabel extract -F babel.cfg -k _ --no-location --omit-header -o .messages.pot .
	$(BIN)/pybabel update -i .messages.pot -d src/maxloyalty/web/translations --no-fuzzy-matching --width 100
	rm -f .messages.pot

# Every page at phone and tablet sizes into docs/screenshots/ (Chromium, demo data).
screenshots: install-dev
	$(BIN)/python -m scripts.screenshots

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
