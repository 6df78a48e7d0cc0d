# filesearch-pipeline: every target sets up what is missing first (the .venv/ stamp).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := .run
FILES ?= samples
REPORT ?=
N ?= 300
Q ?=
# a running `make up` writes the environment that reaches it here
STACK_ENV := $(RUN)/stack.env
WITH_STACK_ENV := if [ -f $(STACK_ENV) ]; then source $(STACK_ENV); fi;
# settings given on the command line (make demo INDEX_BACKEND=opensearch) reach the processes
export INDEX_BACKEND OPENSEARCH_URL

.PHONY: help setup up demo chaos search test upload status dlq sweep opensearch provision lint clean bench

help:
	@echo "make demo [FILES=dir] [REPORT=path.json]  bring the stack up, process FILES, report, tear down"
	@echo "make test                                 run the test suite (starts what it needs)"
	@echo "make chaos [N=300] [REPORT=path.json]     soak: faults + kill -9 of workers; exit 0 only if nothing is lost"
	@echo "make up                                   run the whole stack in the foreground (Ctrl-C stops)"
	@echo "make upload FILES=dir                     upload into the stack a running 'make up' serves"
	@echo "make search Q='words' [TYPE=pdf] [FOLDER=prefix/]   search the index"
	@echo "make status                               depth of every queue and DLQ"
	@echo "make opensearch [OPENSEARCH_PORT=9200]   a local OpenSearch node in the foreground"
	@echo "make lint                                 ruff + mypy"

setup: $(STAMP)

# system packages: Tesseract OCR with Japanese (Debian); installed when missing and possible
SYSTEM_STAMP := $(VENV)/.system-deps
$(SYSTEM_STAMP):
	@if ! command -v tesseract >/dev/null || ! tesseract --list-langs 2>/dev/null | grep -qx jpn; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing tesseract-ocr tesseract-ocr-jpn ..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-jpn >/dev/null) \
	      || echo "WARNING: could not install Tesseract: OCR will be unavailable"; \
	  else echo "NOTE: install tesseract-ocr and tesseract-ocr-jpn for OCR (not root / no apt-get)"; fi; \
	fi
	@mkdir -p $(VENV) && touch $(SYSTEM_STAMP)

$(STAMP): requirements.txt requirements-dev.txt $(SYSTEM_STAMP)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

up: $(STAMP)
	$(BIN)/python -m devstack.stack up

demo: $(STAMP)
	$(BIN)/python -m devstack.demo --files "$(FILES)" $(if $(REPORT),--report "$(REPORT)")

chaos: $(STAMP)
	$(BIN)/python -m devstack.chaos -n $(N) $(if $(REPORT),--report "$(REPORT)")

search: $(STAMP)
	@$(BIN)/python -m devstack.search $(if $(TYPE),--type "$(TYPE)") $(if $(FOLDER),--folder "$(FOLDER)") -- $(Q)

upload: $(STAMP)
	@test -f $(STACK_ENV) || { echo "no running stack: start 'make up' first"; exit 2; }
	@source $(STACK_ENV); $(BIN)/python -m devstack.upload "$(FILES)"

status: $(STAMP)
	@test -f $(STACK_ENV) || { echo "no running stack: start 'make up' first"; exit 2; }
	@source $(STACK_ENV); $(BIN)/python -m pipeline.status $(ARGS)

# remove event/reply queues and SNS subscriptions left by crashed monitors (cron it in production)
sweep: $(STAMP)
	@$(WITH_STACK_ENV) $(BIN)/python -m broker.sweep $(ARGS)

dlq: $(STAMP)
	@test -f $(STACK_ENV) || { echo "no running stack: start 'make up' first"; exit 2; }
	@source $(STACK_ENV); $(BIN)/python -m pipeline.dlq $(ARGS)

# a single-node OpenSearch from Maven Central jars, in the foreground (Java 17 + Maven)
OPENSEARCH_PORT ?= 9200
opensearch: $(STAMP)
	$(BIN)/python -m devstack.opensearch run --home $(RUN)/opensearch --port $(OPENSEARCH_PORT)

provision: $(STAMP)
	@$(WITH_STACK_ENV) $(BIN)/python -m pipeline.provision

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

clean:
	rm -rf $(RUN) .pytest_cache .mypy_cache .ruff_cache

# performance: every row of docs/performance.md in one run (~15 min); QUICK=1 for a tiny check run
bench: $(STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(if $(REPORT),--report "$(REPORT)")
