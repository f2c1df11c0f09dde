# Mutation testing of the core rooms (mutation/run.py, docs/mutation.md). Not part of
# `make test` or CI: run it after changing a core module or its tests.
## mutation         mutation score per core module and the surviving mutants (MUTATION_ARGS=wire health)
MUTATION_ARGS ?=
MUTATION_NICE ?= nice -n 10

.PHONY: mutation

# mutmut goes into the venv here, never into setup.cfg.
$(VENV)/.mutation-installed: mutation/requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r mutation/requirements.txt
	touch $@

mutation: venv $(VENV)/.mutation-installed
	$(MUTATION_NICE) $(PY) -m mutation.run $(MUTATION_ARGS)
