# Two commands do everything: `make run` starts the platform, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-dev browser run demo demo-gan test test-fast bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	@touch $@

install-dev: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	@touch $@

# Browser tests drive Debian's chromium through Playwright; install it once if missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

run: install
	$(VENV)/bin/aigc up --port $(PORT)

demo: install
	$(VENV)/bin/aigc demo

demo-gan: install
	$(VENV)/bin/aigc demo --gan

test: install-dev browser
	$(PY) -m pytest

test-fast: install-dev
	$(PY) -m pytest tests/unit

bench: install-dev
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache
