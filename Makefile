# The README's commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Chainer 7.8.1's setup.py imports pkg_resources: build it with these tools, without isolation.
BUILD_TOOLS := 'setuptools>=64,<70' wheel

.PHONY: install test demo clean-venv

install: $(STAMP)

$(STAMP): setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(BUILD_TOOLS)
	$(BIN)/python -m pip install --quiet --no-build-isolation 'chainer==7.8.1'
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest tests

clean-venv:
	rm -rf $(VENV)

# The whole method and both baselines on the real digits data, CPU, about five minutes.
demo: install
	$(BIN)/python -m reproduce.experiment --dataset digits --noise symmetric --rate 0.5 --out runs/demo
