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

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH_SPEC)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/npfm demo --aleph-dir $(ALEPH_DIR) --out $(DEMO_OUT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/loader_throughput.py

clean:
	rm -rf $(VENV) $(DEMO_OUT)
