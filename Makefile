# Fresh-machine entry points: `make demo` and `make test` both create .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU wheel of torch lies on this kind of machine; installing it first keeps
# pip from resolving the multi-GB CUDA build. On a GPU machine, override:
#   make TORCH_SPEC='torch==2.13.0 --index-url <your CUDA index>'
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo
ALEPH_DIR ?= ../shared/data/aleph

.PHONY: install sysdeps demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH_SPEC)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Real services for the tests, from Debian's packages: PostgreSQL (catalog tests),
# Chromium (browser tests of the portal) and wrk (the portal's load benchmark).
# Installed only where missing; needs root or sudo on a Debian machine.
SYSDEPS := postgresql chromium wrk
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sysdeps:
	@missing=$$(for p in $(SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi

demo: install
	$(BIN)/npfm demo --aleph-dir $(ALEPH_DIR) --out $(DEMO_OUT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: install sysdeps lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/loader_throughput.py

clean:
	rm -rf $(VENV) $(DEMO_OUT)
