# gateway: install, run, test, lint, bench. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config/local.toml

.PHONY: install deps run test test-fast lint bench fuzz clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gateway needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# System packages the integration tests need: dovecot (Debian's dovecot-imapd) for the IMAP
# intake tests, Debian's chromium for the web console's browser tests (driven by Playwright
# from PyPI; never `playwright install`), and the PostgreSQL server (Debian's postgresql; the tests
# start their own server in a temporary directory, never the system's) for the PostgreSQL tests.
# Does nothing when all are installed (no root needed then); installs what is missing when run as
# root; otherwise says how. Without them those tests skip locally (and fail in CI).
DEB_PACKAGES = $(if $(wildcard /usr/sbin/dovecot),,dovecot-imapd) $(if $(wildcard /usr/bin/chromium),,chromium) $(if $(wildcard /usr/lib/postgresql/*/bin/pg_ctl),,postgresql)
deps:
	@if [ -z "$(strip $(DEB_PACKAGES))" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEB_PACKAGES); \
	else \
	  echo "missing: $(DEB_PACKAGES): run 'sudo make deps' (apt-get install $(DEB_PACKAGES));" \
	    "the IMAP, browser and PostgreSQL integration tests skip without them"; \
	fi

# Runs the daemon on the embedded default. It creates a development signing key if there is none,
# imports the bundled tariff data and the sample practice register (no-ops when unchanged) and,
# the first time, drops the sample claims from fixtures/samples/ into the spool, so there is
# something to see.
run: install
	$(BIN)/gateway keys generate --config $(CONFIG) --if-missing
	$(BIN)/gateway tariffs import --config $(CONFIG) fixtures/tariffs/takster.csv fixtures/tariffs/nlk-codes.csv fixtures/tariffs/nlk-rates.csv
	$(BIN)/gateway practices import --config $(CONFIG) fixtures/practices/practices.csv
	@if [ ! -e var/.seeded ]; then \
	  mkdir -p var/spool/incoming && cp fixtures/samples/* var/spool/incoming/ && touch var/.seeded && \
	  echo "seeded var/spool/incoming with the sample claims from fixtures/samples/"; fi
	@echo "gateway: drop claims into var/spool/incoming/, replies appear in var/outbox/ (Ctrl-C stops)"
	$(BIN)/gateway run --config $(CONFIG)

test: install deps
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not integration and not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.spool_bench
	$(BIN)/python -m bench.spool_backlog
	$(BIN)/python -m bench.rules_bench
	$(BIN)/python -m bench.stats_bench
	$(BIN)/python -m bench.mail_bench
	$(BIN)/python -m bench.instances_bench
	$(BIN)/python -m bench.hostile_bench

# Coverage-guided fuzzing (atheris) of the MIME unwrap, the XML reader and the claim parser,
# FUZZ_SECONDS each (default 600). A crash is written to fuzz/crashes/ and fails the run; copy it
# into fuzz/corpus/<target>/ once fixed, where every test run replays it.
FUZZ_SECONDS ?= 600
fuzz: install
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis
