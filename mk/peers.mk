# Third-party MCP peers for tests/interop (npm). The exact versions are pinned by
# tests/interop/npm/package-lock.json; the install lives in the gitignored .cache/peers.
## peers          install the npm MCP peers the interop tests drive (server-everything, server-filesystem)
PEERS_DIR ?= .cache/peers
PEERS_SPEC := tests/interop/npm
NPM ?= npm

.PHONY: peers peers-clean

peers: $(PEERS_DIR)/.installed

$(PEERS_DIR)/.installed: $(PEERS_SPEC)/package.json $(PEERS_SPEC)/package-lock.json
	@command -v $(NPM) >/dev/null || { echo "make peers needs node and npm (node >= 20)"; exit 1; }
	mkdir -p $(PEERS_DIR)
	cp $(PEERS_SPEC)/package.json $(PEERS_SPEC)/package-lock.json $(PEERS_DIR)/
	cd $(PEERS_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

peers-clean:
	rm -rf $(PEERS_DIR)
