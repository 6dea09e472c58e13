# Tipline: one entry point for setting up, running and testing. See README.md.
# Needs on the machine: python3 (3.11+) with venv, node 20+ with npm; for `make test` also
# Debian's chromium and age, and PostgreSQL reachable at $(TIPLINE_TEST_POSTGRES_URL).

VENV := .venv
PY := $(VENV)/bin/python
export TIPLINE_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: setup run test lint typecheck pytest vectors bench-crypto bench-submit bench-upload clean

# Compiled Flask-Babel catalogues: one per translations/<lang>/LC_MESSAGES/messages.po.
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

setup: $(VENV)/.installed node_modules/.installed $(CATALOGUES)

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@ -l $*

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	$(VENV)/bin/tipline-server demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check tipline

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(PY) -m pytest

test: lint typecheck pytest

# Vectors are committed; remake them only when docs/SPEC.md changes.
vectors: setup
	$(PY) tests/vectors/make_vectors.py

bench-crypto: setup
	$(PY) bench/crypto.py

bench-submit: setup
	$(PY) bench/submit.py

bench-upload: setup
	$(PY) bench/upload.py

clean:
	rm -rf $(VENV) node_modules static/build $(CATALOGUES)
