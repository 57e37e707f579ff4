# `make run` starts Gradeflow; `make test` runs every check and the whole test suite; `make test-fast` runs the
# tests that need no service (the engine, the grading vectors in-process, pure functions, the OpenAPI contract).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint install browser fonts clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP) fonts
	$(BIN)/gradeflow dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
	$(BIN)/kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml

# The docs page test opens /docs in Debian's Chromium.
browser:
	command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q chromium || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }; }

# The PDF reports print every script with Noto faces from Debian's packages (found through fontconfig
# at run time, never downloaded); the tests read the text back with poppler's pdftotext.
PDF_PACKAGES := fonts-noto-core fonts-noto-cjk poppler-utils
fonts:
	@missing=$$(for p in $(PDF_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	[ -z "$$missing" ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q $$missing || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$missing; }; }

# Two test processes (pytest-xdist, one a core), each with its own database, Redis db, SeaweedFS and SMTP server;
# an idle process takes the next test.
test: lint browser fonts
	$(BIN)/pytest -n 2 --dist worksteal

# Without PostgreSQL, Redis or SeaweedFS (a test that asks for them fails), property tests trying at most 100
# examples each, in two processes (one a core).
FAST := tests/unit tests/contract
test-fast: $(STAMP)
	GRADEFLOW_TEST_NO_SERVICES=1 GRADEFLOW_TEST_MAX_EXAMPLES=100 \
	  $(BIN)/pytest -q --no-header -p no:schemathesis -p no:anyio -n 2 --dist worksteal $(FAST)

clean:
	rm -rf $(VENV) .venv-lti-compat .run
