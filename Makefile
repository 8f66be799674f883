# covey — `make run` starts the assistant, `make test` runs the suite. Both set everything up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# llama-cpp-python is compiled on install (no wheel for this platform): use every core.
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
# On x86-64, not tuned to this very CPU: a native build on a Xeon with AMX crashed in
# ggml_backend_amx_mul_mat on every prompt of more than one token (llama-cpp-python 0.3.36, in
# a VM). AVX2 and FMA are on every x86-64 machine covey is meant for.
ifeq ($(shell uname -m),x86_64)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
endif
# A decode of a few tokens: a llama.cpp build that cannot run here is rebuilt, not kept.
MODEL_CHECK := $(BIN)/python -c "from models.registry import get_model; from models.base import GenerationParams as P; assert ''.join(get_model(None).stream([{'role': 'user', 'content': 'Say hello to the kitchen.'}], P(max_tokens=4, temperature=0)))"

.PHONY: run test install bench clean

run: $(STAMP)
	@$(BIN)/python -m compileall -q app sync models tui.py  # bytecode: a faster start
	$(BIN)/covey

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	@echo "type: ignore comments in app/, sync/, models/, tui.py (each with its reason): $$(grep -rn 'type: ignore' --include='*.py' app sync models tui.py | wc -l)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing covey and its dependencies into $(VENV) (the first time compiles llama.cpp: several minutes)..."
	$(BIN)/python -m pip install --progress-bar off -e '.[test]'
	@$(MODEL_CHECK) 2>/dev/null || { echo "llama.cpp (perhaps a cached build for another CPU) cannot run here: building it again..."; \
	  $(BIN)/python -m pip install --progress-bar off --no-cache-dir --force-reinstall --no-deps \
	    "llama-cpp-python==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')" && $(MODEL_CHECK); }
	$(BIN)/python -m compileall -q app sync models tui.py
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/covey bench model
	$(BIN)/covey bench sync
	$(BIN)/covey bench clone
	$(BIN)/covey bench api
	$(BIN)/covey bench warm
	$(BIN)/covey bench import
	$(BIN)/python tests/bench_scale.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
