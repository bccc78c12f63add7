# Stellar — the two commands a newcomer needs: `make demo` and `make test`.
# Each bootstraps .venv from the hash-locked requirements.lock with nothing but python3.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum requirements.lock pyproject.toml | sha1sum | cut -c1-12)
PIP    := $(BIN)/python -m pip --disable-pip-version-check --no-input -q
# pytest-xdist workers for `make test`: each starts its own PostgreSQL and Temporal servers and takes
# whole test files (--dist loadfile), so module fixtures and file order stay as written; the longest
# files go first (tests/conftest.py orders them by their declared timeouts). Three on two
# cores: the longest tests mostly wait (the 3 min site outage, a killed worker's 30 s monitor heartbeat
# timeout, the database outage), so a third worker fills those waits.
TEST_WORKERS ?= 3

.PHONY: demo test venv bench chaos drill dev lock clean

demo: venv  ## start the embedded stack and run a real M42 order end to end
	$(BIN)/stellar demo $(ARGS)

test: venv  ## run the whole test suite against real PostgreSQL, Temporal, simulator, localstripe
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(ARGS)

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r requirements.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

drill: venv  ## restore drill: back up, write, lose the disk, restore to a moment and to latest → bench/drill.md
	$(BIN)/python -m bench.drill $(ARGS)

dev: venv  ## run the embedded stack until Ctrl-C
	$(BIN)/stellar dev

bench: venv  ## write bench/report.md
	$(BIN)/python -m bench.report $(ARGS)

chaos: venv  ## write bench/chaos.md: orders through worker/Temporal/PostgreSQL/Voyager outages (long)
	$(BIN)/python -m bench.chaos $(ARGS)

lock:  ## re-resolve requirements.lock from pyproject.toml (needs uv: pip install uv)
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
