# Headless browser test of the admin UI: Debian's chromium and its chromedriver.
# The test (tests/browser/) skips with a reason when they are missing; CI runs
# `make browser-deps` before `make test` so it runs there.
BROWSER_PACKAGES := chromium chromium-driver
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: browser-deps test-browser

## browser-deps   install Debian's chromium and chromium-driver (skipped when present)
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		echo "chromium and chromedriver already installed"; \
	else \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
			$(BROWSER_PACKAGES); \
	fi

## test-browser   run only the headless-browser test of the admin UI
test-browser: venv browser-deps
	$(PY) -m pytest -m browser tests/browser $(PYTEST_ARGS)
