# Lint and types: ruff (ruff.toml) over the code, tests and benchmarks, mypy (setup.cfg
# [mypy]) over tunnel_client/. The tools live in their own marker so `make test` and
# `make demo` never wait for them.
## lint           ruff and mypy, pinned in setup.cfg [lint]
.PHONY: lint

$(VENV)/.lint-tools: $(VENV)/.installed setup.cfg
	$(PY) -m pip install --quiet -e '.[lint]'
	touch $@

lint: $(VENV)/.lint-tools
	$(VENV)/bin/ruff check --no-cache tunnel_client tests benchmarks
	$(VENV)/bin/mypy
