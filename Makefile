# tunnel-client developer entry points. Every target sets up what it needs on a fresh
# machine. Area-specific targets (packaging, benchmarks, ...) live in mk/*.mk.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help venv test test-fast demo docs clean

help:
	@echo "make demo           run the end-to-end demo through the local control plane"
	@echo "make test           set up a venv with the test extras (and npm peers when npm is"
	@echo "                   there) and run the whole suite; ends with what was skipped"
	@echo "make docs           regenerate docs/configuration.md from the settings registry"
	@grep -h '^## ' mk/*.mk 2>/dev/null | sed 's/^## /make /' || true

# Two markers: the runtime alone (make demo), then the test extras on top (make test).
$(VENV)/.runtime: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: $(VENV)/.runtime
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The npm peers need no root: installed when npm is there, else their tests skip.
test: venv
	@if command -v $(NPM) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory peers || \
			echo "make peers failed: the tests that need the npm peers will skip"; \
	fi
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m 'not slow' $(PYTEST_ARGS)

demo: $(VENV)/.runtime
	$(PY) -m tunnel_client dev demo

docs: venv
	$(PY) -m tunnel_client.config.docs > docs/configuration.md

clean:
	rm -rf $(VENV) build dist *.egg-info

-include mk/*.mk
