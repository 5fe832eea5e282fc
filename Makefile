# appbackups — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NODE := node_modules/.installed
VENV_CHECKOV := .venv-checkov
STAMP_CHECKOV := $(VENV_CHECKOV)/.installed
VENV_INFRA := .venv-infra
STAMP_INFRA := $(VENV_INFRA)/.installed
TEST_WORKERS ?= 4

.PHONY: setup run test suite lint format unit infra browser barman clean portal-types docs

setup: $(STAMP_PY) $(STAMP_NODE)

# The virtual environments are filled by uv (astral-sh/uv, pinned here), which pip installs into .venv first:
# the same pinned packages in seconds, where pip took more than a minute of the suite's ten. Compiled to bytecode
# as pip does: with PYTHONDONTWRITEBYTECODE set (as here) every process would compile its imports again.
UV_VERSION := 0.13.10
UV := $(VENV)/bin/uv
UV_INSTALL := $(UV) pip install --quiet --compile-bytecode

$(UV):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP_PY): requirements.txt requirements-dev.txt pyproject.toml | $(UV)
	$(UV_INSTALL) --python $(PY) -r requirements-dev.txt
	$(UV_INSTALL) --python $(PY) --no-deps -e .
	touch $@

$(STAMP_NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov has its own virtual environment: its pins clash with the app's dependencies.
$(STAMP_CHECKOV): requirements-checkov.txt | $(UV)
	test -x $(VENV_CHECKOV)/bin/python || $(PYTHON) -m venv $(VENV_CHECKOV)
	$(UV_INSTALL) --python $(VENV_CHECKOV)/bin/python -r requirements-checkov.txt
	touch $@

# The ARM models of the azure-mgmt-* packages (tools/arm_check.py) and hadolint, in their own environment too.
$(STAMP_INFRA): requirements-infra.txt | $(UV)
	test -x $(VENV_INFRA)/bin/python || $(PYTHON) -m venv $(VENV_INFRA)
	$(UV_INSTALL) --python $(VENV_INFRA)/bin/python -r requirements-infra.txt
	touch $@

# apt-get refuses to run beside another one: the installs `make test` runs in parallel take turns.
APT_TURN := flock /tmp/appbackups-apt.lock

# The Backups page is tested in Debian's Chromium, driven by Playwright (pip) with executable_path.
browser:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium for the browser tests"; \
		$(APT_TURN) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium'; }

# Point-in-time recovery archives WAL with Debian's barman-cloud (docs/decisions/0009): system-wide, so that
# the postgres user can run it from archive_command (the pyenv Python under /root is not executable by it).
barman:
	@command -v barman-cloud-wal-archive >/dev/null && /usr/bin/python3 -c 'import azure.storage.blob' 2>/dev/null || { \
		echo "installing Debian's barman-cli-cloud and python3-azure for point-in-time recovery"; \
		$(APT_TURN) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends barman-cli-cloud python3-azure'; }

run: setup barman
	$(PY) -m tools.run

# ruff, then the import-linter contracts of pyproject.toml (the code's layers; no cache folder left behind);
# then the Backups page: its API types current (the OpenAPI document, and the .d.ts generated from it),
# tsc's check of its JSDoc types, and eslint; then the documentation site (make docs).
PORTAL_TYPES := functions/portal_files/types
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m tools.openapi_types --check
	node_modules/.bin/openapi-typescript $(PORTAL_TYPES)/openapi.json -o $(PORTAL_TYPES)/api.d.ts --check
	node_modules/.bin/tsc --noEmit -p tsconfig.json
	node_modules/.bin/eslint --max-warnings 0 functions/portal_files
	$(MAKE) --no-print-directory docs

# The documentation site (mkdocs.yml, docs/) into the git-ignored .site/. --strict turns every warning into an
# error, and mkdocs.yml makes a link or an anchor that leads nowhere a warning: a broken link fails make test.
# Not --quiet: it silences the warnings before --strict counts them, and the build passes.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir .site

# The Backups page's API types from the API itself: openapi.json from build_openapi(), api.d.ts from that.
portal-types: setup
	$(PY) -m tools.openapi_types
	node_modules/.bin/openapi-typescript $(PORTAL_TYPES)/openapi.json -o $(PORTAL_TYPES)/api.d.ts

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

unit: setup
	$(PY) -m pytest tests/unit -q

infra: setup $(STAMP_CHECKOV) $(STAMP_INFRA)
	$(PY) -m tools.check_infra

# The five installs (three virtual environments, Chromium, barman-cloud) at once, then the checks and pytest in
# four workers: most tests wait on storage, PostgreSQL or a lease, so four keep two cores busy. Each worker has
# its own session Azurite and development host on free ports, and a worker that runs out of
# tests takes some of another's (worksteal), so no long file is left to run alone at the end.
test:
	$(MAKE) --no-print-directory --jobs=5 setup $(STAMP_CHECKOV) $(STAMP_INFRA) browser barman
	$(MAKE) --no-print-directory --jobs=3 --output-sync=target lint infra suite

# The checks (about a minute and a half) run beside the suite rather than before it, which spends much of its time
# waiting on Azurite, PostgreSQL and the development host. --output-sync prints each one's output whole.
suite: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

clean:
	rm -rf $(VENV) $(VENV_CHECKOV) $(VENV_INFRA) node_modules .azurite .pytest_cache .ruff_cache *.egg-info .site
