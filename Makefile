# LedgerLink — every command a developer or CI needs. `make test` works from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENV ?= dev
ALARM_EMAIL ?=
comma := ,

.PHONY: venv test unit lint synth bench run clean

venv: $(STAMP)

# The virtual environment is rebuilt whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check functions infra local tests
	$(VENV)/bin/ruff format --check functions infra local tests
	$(VENV)/bin/mypy functions infra local

# Synthesise the CloudFormation template for ENV (dev|staging|prod) into cdk.out/.
# Same as `cdk synth -c env=$(ENV)`, without needing the npm CLI or Docker. ALARM_EMAIL=ops@example.com
# is `-c alarm_email=...` (prod is refused without an alarm e-mail, here or in cdk.json).
synth: $(STAMP)
	CDK_CONTEXT_JSON='{"env":"$(ENV)"$(if $(ALARM_EMAIL),$(comma)"alarm_email":"$(ALARM_EMAIL)")}' $(PY) infra/app.py

bench: $(STAMP)
	$(PY) tests/bench/run.py

run: $(STAMP)
	$(VENV)/bin/ledgerlink local up

clean:
	rm -rf $(VENV) cdk.out .build .ledgerlink
