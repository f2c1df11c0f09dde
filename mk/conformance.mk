# The official MCP conformance suite (npm, pinned by tests/conformance/package-lock.json,
# with the Node.js >= 22 it needs) against the MCP Python SDK's "everything" server, directly
# and through the tunnel on both bindings. Not part of `make test` or CI: the server is not
# published, so it runs from a local copy of the python-sdk repository.
## conformance      MCP conformance suite, direct vs through the tunnel (CONFORMANCE_SERVER_DIR=...)
CONFORMANCE_SERVER_DIR ?=
CONFORMANCE_DIR ?= .cache/conformance
CONFORMANCE_SPEC := tests/conformance
CONFORMANCE_PYTHON ?= $(PY)
CONFORMANCE_ARGS ?=
NPM ?= npm

.PHONY: conformance conformance-clean

$(CONFORMANCE_DIR)/.installed: $(CONFORMANCE_SPEC)/package.json $(CONFORMANCE_SPEC)/package-lock.json
	@command -v $(NPM) >/dev/null || { echo "make conformance needs npm"; exit 1; }
	mkdir -p $(CONFORMANCE_DIR)
	cp $(CONFORMANCE_SPEC)/package.json $(CONFORMANCE_SPEC)/package-lock.json $(CONFORMANCE_DIR)/
	cd $(CONFORMANCE_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

conformance: venv
	@if [ -z "$(CONFORMANCE_SERVER_DIR)" ] || \
	    [ ! -d "$(CONFORMANCE_SERVER_DIR)/examples/servers/everything-server" ]; then \
		echo "make conformance: skipped: set CONFORMANCE_SERVER_DIR to a local copy of the" \
		     "modelcontextprotocol/python-sdk repository (it runs its" \
		     "examples/servers/everything-server; now: '$(CONFORMANCE_SERVER_DIR)')"; \
		exit 0; \
	fi; \
	$(MAKE) --no-print-directory $(CONFORMANCE_DIR)/.installed && \
	$(PY) -m tests.conformance.run --server-dir "$(CONFORMANCE_SERVER_DIR)" \
		--python "$(CONFORMANCE_PYTHON)" --out $(CONFORMANCE_DIR)/results \
		--node $(CONFORMANCE_DIR)/node_modules/.bin/node \
		--cli $(CONFORMANCE_DIR)/node_modules/@modelcontextprotocol/conformance/dist/index.js \
		$(CONFORMANCE_ARGS)

conformance-clean:
	rm -rf $(CONFORMANCE_DIR)
