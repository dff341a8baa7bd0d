# The two commands the README leads with:
#   make dev    run the pipeline locally (local Kafka broker, ingest, streams, example consumer)
#   make test   lint and run the whole test suite against a real Kafka broker
# Both create .venv and install hookstream into it first (Python 3.11+, Java 17+, Maven),
# and Chromium for the console's browser tests when it is missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install chromium dev test lint unit bench kafka clean

$(BIN)/hookstream: pyproject.toml
	@echo "==> creating $(VENV) and installing hookstream with its test extras"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/hookstream chromium

# The console's browser tests drive Debian's Chromium (apt-get, only when it is missing).
chromium:
	@.ci/install-chromium

dev: install
	$(BIN)/hookstream dev --config examples/dev.toml

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pytest exits 5 when it collected no test: treat that as the failure it is.
test: lint
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

unit: install
	$(BIN)/python -m pytest tests/unit

bench: install
	$(BIN)/hookstream bench ingest

kafka: install
	$(BIN)/hookstream kafka

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache bench-results
