# Tipline: one entry point for setting up, running and testing. See README.md.
# Needs on the machine: python3 (3.11+) with venv, node 20+ with npm. `make test` installs the
# Debian packages its tests need when run as root (tools/test-deps.sh; otherwise it prints the
# apt-get line and stops), and starts a throwaway PostgreSQL cluster when nothing answers at
# $(TIPLINE_TEST_POSTGRES_URL) (tools/with-postgres.sh).

VENV := .venv
PY := $(VENV)/bin/python
export TIPLINE_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: setup run test test-deps lint typecheck pytest vectors bench-crypto bench-submit bench-upload bench-s3 clean
.PHONY: static jstest
.PHONY: wheelhouse bench-desk

# Compiled Flask-Babel catalogues: one per translations/<lang>/LC_MESSAGES/messages.po.
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

setup: $(VENV)/.installed node_modules/.installed $(CATALOGUES) static

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@ -l $*

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The browser crypto's libsodium.js (WebAssembly build) and word list, into static/build/.
static: $(VENV)/.installed node_modules/.installed
	$(PY) tools/build_static.py

run: setup
	$(VENV)/bin/tipline-server demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

pytest: test-deps setup
	tools/with-postgres.sh $(PY) -m pytest

# test-deps comes first: without root and a missing package it stops before anything runs.
test: test-deps lint typecheck pytest jstest

test-deps:
	tools/test-deps.sh

# The browser crypto under node's own test runner (every shared vector, tests/js/).
jstest: setup
	node --test tests/js/

# Vectors are committed; remake them only when docs/SPEC.md changes.
vectors: setup
	$(PY) tests/vectors/make_vectors.py

bench-crypto: setup
	$(PY) bench/crypto.py

bench-submit: setup
	$(PY) bench/submit.py

bench-upload: setup
	$(PY) bench/upload.py

# The browser path's upload to the S3 blob store (a local SeaweedFS) against the local folder.
bench-s3: setup
	$(PY) bench/s3.py

# Small submissions/s, one app server against two (same workers), sharing PostgreSQL, Redis, S3.
.PHONY: bench-scale
bench-scale: setup
	$(PY) bench/scale.py

# The app limits' cost per request against limits off, in memory and in Redis (app_limits.py).
.PHONY: bench-limits
bench-limits: setup
	$(PY) bench/app_limits.py

.PHONY: bench-seal-browser
bench-seal-browser: setup
	$(PY) bench/seal_browser.py

# The proof-of-work's solve time in Chromium's Worker at several difficulties (SPEC §10).
.PHONY: bench-pow
bench-pow: setup
	$(PY) bench/pow_browser.py

# Time until the submit page can seal, over a Tor-like link (800 ms, 500 kB/s), cold and warm.
.PHONY: bench-ready
bench-ready: setup
	$(PY) bench/ready.py

clean:
	rm -rf $(VENV) node_modules static/build $(CATALOGUES)

# Wheels of the desk and everything it needs, for the air-gapped machine (docs/DESK.md):
# there, pip install --no-index --find-links wheelhouse 'tipline[desk]'
WHEELHOUSE ?= wheelhouse
wheelhouse: $(VENV)/.installed
	rm -rf $(WHEELHOUSE)
	$(VENV)/bin/pip wheel --quiet --disable-pip-version-check -c constraints.txt \
		-w $(WHEELHOUSE) '.[desk]'

bench-desk: setup
	$(PY) bench/desk.py

# Viewing copies against pdftoppm alone on the same PDF, and the desk's peak RSS (docs/DESK.md).
.PHONY: bench-convert
bench-convert: setup
	$(PY) bench/convert.py

.PHONY: bench-journalist bench-journalist-big
bench-journalist: setup
	tools/with-postgres.sh $(PY) bench/journalist.py

# The journalist lists at the scale of a big leak (100,000 sources, 1,000,000 submissions) on
# PostgreSQL only, without the export (about 4 minutes, most of it loading the rows).
bench-journalist-big: setup
	tools/with-postgres.sh $(PY) bench/journalist.py --sources 100000 --per-source 10 --postgres-only --no-export

# deploy/install.sh run for real in fresh Debian 12 chroots (root, network, ~2 minutes; not in `make test`).
.PHONY: test-install
test-install: setup
	deploy/test-in-chroot.sh

# Re-apply the known mutations of tests/mutation/known.py (each a way to break a promise that the
# suite once missed) in a temporary copy and check that targeted tests catch every one. Not part
# of `make test`; about two minutes.
.PHONY: mutation-known
mutation-known: setup
	$(PY) tests/mutation/known.py

# The mutation score of the suite over tipline/crypto (mutmut, configured in pyproject.toml): every
# mutant of the crypto core run against tests/crypto and the shared vectors, then the score,
# overall and per module. Not part of `make test`: about 15 minutes on two cores.
.PHONY: mutation
mutation: setup
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children 2 > mutants.log 2>&1 || (tail -c 3000 mutants.log; exit 1)
	$(VENV)/bin/mutmut export-cicd-stats
	$(PY) tests/mutation/score.py

# The same over the desk's vault and text neutraliser and the server's blob store and request
# hygiene (tests/mutation/paths.py names the modules and the tests; SETS="desk" or "server" for
# one), each in a temporary copy with its own [tool.mutmut], so `make mutation` is undisturbed.
# Not part of `make test`: about 15 minutes (desk) and 40 (server) on two shared cores.
SETS ?= desk server
.PHONY: mutation-paths
mutation-paths: setup
	nice -n 19 $(PY) tests/mutation/paths.py $(SETS) --target 80

# GET / latency (median, p95) through the shipped nginx and gunicorn, under 200 stalled request
# bodies against without them, in the same run (issue 10).
.PHONY: bench-availability
bench-availability: setup
	$(PY) bench/availability.py
