# covey — `make run` starts the assistant, `make test` runs the suite. Both set everything up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# llama-cpp-python is compiled on install (no wheel for this platform): use every core.
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test install bench clean

run: $(STAMP)
	@$(BIN)/python -m compileall -q app sync models tui.py  # bytecode: a faster start
	$(BIN)/covey

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing covey and its dependencies into $(VENV) (the first time compiles llama.cpp: several minutes)..."
	$(BIN)/python -m pip install --progress-bar off -e '.[test]'
	$(BIN)/python -m compileall -q app sync models tui.py
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/covey bench model
	$(BIN)/covey bench sync
	$(BIN)/covey bench clone
	$(BIN)/covey bench api
	$(BIN)/python tests/bench_scale.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
